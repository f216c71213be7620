/* report_html.c - `corral report --html OUT.html`: one self-contained page.
 *
 * The page (report/page.html) gets, in place of its markers, the page's
 * stylesheet and script, the chart library, and the data: the JSON of
 * `corral report --json` with the chart data, whose every '<', '>' and '&' is
 * escaped (json.c) so that it cannot end its <script> element. The data is
 * bounded like everything else (report.h): the page of a 10^6-task batch is
 * about as big as the page of a 10^4-task one.
 */
#include <errno.h>
#include <string.h>

#include "report.h"

int rpt_print_html(const struct rpt *r, FILE *f, const char **why)
{
	const char *html, *p, *js, *css, *page, *w;
	size_t njs = rpt_asset("echarts", &js);

	rpt_asset("html", &html);
	rpt_asset("css", &css);
	rpt_asset("js", &page);
	if (njs == 0) {
		*why = rpt_asset("why", &w) ? w : "this corral was built without its chart library";
		return -ENOTSUP;
	}
	p = html;
	while (*p) {
		const char *m = strstr(p, "@@");
		if (!m) {
			fputs(p, f);
			break;
		}
		fwrite(p, 1, (size_t)(m - p), f);
		if (!strncmp(m, "@@CSS@@", 7)) {
			fputs(css, f);
			p = m + 7;
		} else if (!strncmp(m, "@@ECHARTS@@", 11)) {
			fwrite(js, 1, njs, f);
			p = m + 11;
		} else if (!strncmp(m, "@@PAGE_JS@@", 11)) {
			fputs(page, f);
			p = m + 11;
		} else if (!strncmp(m, "@@DATA@@", 8)) {
			rpt_print_json(r, f);
			p = m + 8;
		} else if (!strncmp(m, "@@VERSION@@", 11)) {
			fputs(CORRAL_VERSION_STRING, f);
			p = m + 11;
		} else {
			fputs("@@", f);
			p = m + 2;
		}
	}
	return 0;
}
