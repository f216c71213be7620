/* json.h - reading one JSON text in bounded memory, and writing JSON.
 *
 * Reading (json.c): json_check() validates a whole text against RFC 8259
 * without allocating (nesting is limited to JSON_MAX_DEPTH); then cursors walk
 * it in place: a struct json_val is a span of the checked text, members and
 * elements are found by scanning, strings are decoded into a caller's buffer
 * that is at least as long as the text (decoding never grows a string).
 * Nothing is built per value, so a line of n bytes costs n bytes of scratch
 * space, whatever its shape.
 *
 * Strings decode the way Python's json + "surrogateescape" does: a lone
 * \udc80-\udcff escape is the byte 0x80-0xff (how corral writes argv bytes
 * that are not UTF-8); any other lone surrogate becomes U+FFFD.
 *
 * Writing: struct json_out prints to a FILE with commas handled, escaping
 * every string so that it is valid UTF-8 JSON whatever its bytes (invalid
 * UTF-8 as \udcXX, the reverse of the above), and '<', '>', '&' as \u00XX so
 * that the text can sit inside an HTML <script> element.
 */
#ifndef CORRAL_CLI_JSON_H
#define CORRAL_CLI_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 32

enum json_type {
	JSON_INVALID = 0,
	JSON_NULL,
	JSON_BOOL,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT
};

/* A value: [p, end) of a text that json_check() accepted. */
struct json_val {
	enum json_type type;
	const char *p, *end;
};

/* Validate text[0..len): exactly one JSON value, surrounded by optional
 * whitespace. Returns 0, or -EINVAL with *why (a static string) and *at (the
 * byte offset of the error). */
int json_check(const char *text, size_t len, const char **why, size_t *at);

/* The value that the checked text [text, text+len) holds. */
struct json_val json_root(const char *text, size_t len);

/* Iterating an array's elements or an object's members. */
struct json_iter {
	const char *p, *end;
};
void json_iter_init(struct json_iter *it, struct json_val container);
/* Next element (key NULL) or member (*key = the raw key, a JSON string value).
 * Returns false at the end. */
bool json_iter_next(struct json_iter *it, struct json_val *key, struct json_val *val);

/* The member named name (plain ASCII, compared with the decoded key) of an
 * object; false if absent (then *val is JSON_INVALID). */
bool json_member(struct json_val obj, const char *name, struct json_val *val);
/* Number of elements of an array. */
size_t json_count(struct json_val arr);

/* Decode a JSON_STRING into buf (at least v.end - v.p bytes); NUL-terminates
 * it and returns its length (it may contain NUL bytes). */
size_t json_string(struct json_val v, char *buf);
/* A string value equals the ASCII text s. */
bool json_string_is(struct json_val v, const char *s);

/* Numbers. json_u64(): a whole number written without fraction or exponent in
 * [0, 2^64); -ERANGE above, -EINVAL for anything else. json_i64() likewise in
 * int64 range. json_double(): any number (+-HUGE_VAL when it overflows). */
int json_u64(struct json_val v, uint64_t *out);
int json_i64(struct json_val v, int64_t *out);
int json_double(struct json_val v, double *out);

/* ---------------------------------------------------------------- writing */

struct json_out {
	FILE *f;
	int depth;
	bool need_comma[JSON_MAX_DEPTH + 1];
	bool after_key;
};

void json_out_init(struct json_out *o, FILE *f);
void json_obj_begin(struct json_out *o);
void json_obj_end(struct json_out *o);
void json_arr_begin(struct json_out *o);
void json_arr_end(struct json_out *o);
/* A member name (ASCII): the next value is its value. */
void json_key(struct json_out *o, const char *key);
void json_str(struct json_out *o, const char *s, size_t len);
void json_cstr(struct json_out *o, const char *s); /* NULL -> null */
void json_u64_out(struct json_out *o, uint64_t v);
void json_i64_out(struct json_out *o, int64_t v);
/* %.6g-style shortest useful form; null when not finite. */
void json_num_out(struct json_out *o, double v);
void json_bool_out(struct json_out *o, bool v);
void json_null_out(struct json_out *o);
/* A value that is already JSON text (from this writer). */
void json_raw(struct json_out *o, const char *text);
/* Bytes as a JSON string body (no quotes) onto f: see the header comment. */
void json_escape(FILE *f, const char *s, size_t len);

#endif
