/* page.js - the charts and tables of `corral report --html`.
 *
 * Reads the JSON of `corral report --json` from <script id="corral-data"> and
 * draws it with ECharts (embedded in the same page). Every text that comes
 * from the records (commands, sentences, process names) goes into the page
 * through textContent, or through echarts.format.encodeHTML in tooltips:
 * never as HTML. The page loads nothing: its Content-Security-Policy allows
 * no connection, and it has no URL to load.
 *
 * For tests: window.corralReport = {data, charts: {name: echarts instance}},
 * and <body data-ready="1"> once everything is drawn.
 */
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('corral-data').textContent);
  var enc = echarts.format.encodeHTML;
  var charts = {};
  var MiB = 1024 * 1024;

  var COLORS = {
    ok: '#2e9e5b', exit: '#e67e22', oom: '#d62c1a', oom_outside: '#8e1b10',
    subprocess_oom: '#9b59b6', timeout: '#a0522d', signal: '#7f8c8d', spawn_error: '#e84393',
    cancelled: '#bdc3c7', aborted: '#566573', other: '#34495e'
  };
  var OUTCOMES = ['ok', 'exit', 'oom', 'oom_outside', 'subprocess_oom', 'timeout', 'signal',
                  'spawn_error', 'cancelled', 'aborted', 'other'];

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function size(b) {
    if (b === null || b === undefined) return '\u2014';
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'], i = 0;
    if (b < 1024) return b + ' B';
    b /= 1024; i = 1;
    while (b >= 1023.95 && i < u.length - 1) { b /= 1024; i++; }
    return b.toFixed(1) + ' ' + u[i];
  }
  function mt(bs) {
    if (bs === null || bs === undefined) return '\u2014';
    var g = bs / (1024 * MiB);
    if (g < 0.1) return (g * 1024).toFixed(0) + ' MiB\u00b7s';
    if (g < 10) return g.toFixed(2) + ' GiB\u00b7s';
    if (g < 36000) return g.toFixed(1) + ' GiB\u00b7s';
    return (g / 3600).toFixed(1) + ' GiB\u00b7h';
  }
  function secs(s) {
    if (s === null || s === undefined) return '\u2014';
    if (s < 60) return s.toPrecision(3) + ' s';
    if (s < 3600) return Math.floor(s / 60) + 'm' + String(Math.floor(s % 60)).padStart(2, '0') + 's';
    return Math.floor(s / 3600) + 'h' + String(Math.floor((s / 60) % 60)).padStart(2, '0') + 'm';
  }
  function pct(x) { return x === null || x === undefined ? '\u2014' : (100 * x).toFixed(0) + '%'; }
  function mib(b) { return b === null || b === undefined ? null : b / MiB; }
  function chart(id, tall) {
    var box = document.getElementById(id);
    var c = echarts.init(box, null, {renderer: 'canvas'});
    charts[id.replace(/^chart-/, '')] = c;
    return c;
  }
  function groupName(id) {
    if (!id) return '';
    var g = data.groups[id - 1];
    return g ? '[' + id + '] ' + g.command : '';
  }

  /* ------------------------------------------------------------ header */
  var all = data.all;
  document.title = 'corral report: ' + data.file;
  document.getElementById('file').textContent = data.file;
  document.getElementById('sentence').textContent = !data.summary
      ? 'No summary line: the batch had not finished when the file was read, or corral was killed.'
      : data.summary.sentence || (data.summary.verdict_seq === null ? 'No task failed.' : '');
  var cards = document.getElementById('cards');
  function card(key, value, label, shown, bad) {
    var c = el('div', {'class': 'card' + (bad ? ' bad' : ''), 'data-key': key, 'data-value': value});
    c.appendChild(el('b', null, shown === undefined ? value : shown));
    c.appendChild(el('span', null, label));
    cards.appendChild(c);
  }
  card('tasks', all.tasks, 'tasks');
  card('attempts', all.attempts, 'attempts');
  card('retried', all.retried, 'retried attempts', undefined, all.retried > 0);
  card('oom_attempts', all.oom_attempts, 'OOM-killed at their limit', undefined, all.oom_attempts > 0);
  card('failed', all.tasks - all.outcomes.ok - all.outcomes.cancelled, 'tasks failed', undefined,
       all.tasks - all.outcomes.ok - all.outcomes.cancelled > 0);
  card('peak_max', all.peak_max, 'highest peak', size(all.peak_max));
  card('memory_time', all.memory_time, 'memory-time (limit \u00d7 wall)', mt(all.memory_time));
  card('memory_time_retried', all.memory_time_retried, 'of it in retried attempts', mt(all.memory_time_retried));
  if (data.first_start !== null && data.last_end !== null)
    card('span', data.last_end - data.first_start, 'first start to last end', secs(data.last_end - data.first_start));
  if (all.stall_share !== null)
    card('stall_share', all.stall_share, 'of the wall time stalled on memory', pct(all.stall_share));
  if (data.summary && data.summary.provider)
    card('provider', data.summary.provider, 'where the task cgroups came from');
  var hosts = Object.keys(data.hosts);
  if (hosts.length > 1)
    card('hosts', hosts.length, 'hosts: ' + hosts.slice(0, 6).map(function (h) {
      return h + ' (' + data.hosts[h] + ')';
    }).join(', ') + (hosts.length > 6 ? ', \u2026' : ''));

  /* ------------------------------------------------------------ outcomes */
  (function () {
    var names = OUTCOMES.filter(function (o) {
      return (all.outcomes[o] || 0) + (all.attempt_outcomes[o] || 0) > 0;
    });
    chart('chart-outcomes').setOption({
      animation: false,
      tooltip: {trigger: 'axis'},
      grid: {left: 50, right: 20, top: 30, bottom: 30},
      xAxis: {type: 'category', data: names},
      yAxis: {type: 'value', name: 'count', minInterval: 1},
      series: [
        {name: 'tasks (final attempt)', type: 'bar', data: names.map(function (o) {
          return {value: all.outcomes[o] || 0, itemStyle: {color: COLORS[o]}};
        }), label: {show: true, position: 'top'}},
        {name: 'attempts', type: 'bar', data: names.map(function (o) {
          return {value: all.attempt_outcomes[o] || 0, itemStyle: {color: COLORS[o], opacity: 0.45}};
        }), label: {show: true, position: 'top'}}
      ]
    });
  })();

  /* ------------------------------------------------------------ peak vs limit per task */
  (function () {
    var p = data.points, byClass = {}, limits = [];
    for (var i = 0; i < p.seq.length; i++) {
      var o = p.outcome[i];
      var row = [p.seq[i], mib(p.peak[i]), p.attempt[i], o, p.limit[i], p.count[i], p.group[i], p.wall[i]];
      (byClass[o] = byClass[o] || []).push(row);
      if (p.limit[i] !== null) limits.push([p.seq[i], mib(p.limit[i]), p.attempt[i], o, p.limit[i], p.count[i], p.group[i], p.wall[i]]);
    }
    var series = OUTCOMES.filter(function (o) { return byClass[o]; }).map(function (o) {
      return {name: 'peak: ' + o, type: 'scatter', data: byClass[o], symbolSize: o === 'ok' ? 5 : 8,
              itemStyle: {color: COLORS[o]}, large: byClass[o].length > 2000};
    });
    series.push({name: 'limit', type: 'scatter', data: limits, symbol: 'rect', symbolSize: [9, 2],
                 itemStyle: {color: '#2c3e50', opacity: 0.55}, large: limits.length > 2000});
    var note = document.getElementById('peaks-note');
    note.textContent = p.mode === 'all'
      ? 'One point per attempt (' + p.seq.length + '): its memory peak, and its limit as a dash. Drag or scroll to zoom.'
      : 'The batch has ' + all.attempts + ' attempts, more than the ' + p.budget + ' drawn one by one: the task numbers are cut into ' +
        p.slices + ' slices, and each shows its highest and lowest peak and its first OOM kill (' + p.seq.length + ' points).';
    chart('chart-peaks', true).setOption({
      animation: false,
      legend: {top: 0, type: 'scroll'},
      grid: {left: 60, right: 30, top: 40, bottom: 70},
      tooltip: {trigger: 'item', formatter: function (it) {
        var d = it.data;
        return 'task ' + d[0] + ' attempt ' + d[2] + ' \u00b7 ' + enc(d[3]) +
          '<br>' + (it.seriesName === 'limit' ? 'limit ' + size(d[4]) : 'peak ' + size(d[1] === null ? null : Math.round(d[1] * MiB)) +
          (d[4] !== null ? ' of ' + size(d[4]) : '')) +
          '<br>wall ' + secs(d[7]) + (d[5] > 1 ? '<br>stands for ' + d[5] + ' attempts of its slice' : '') +
          (d[6] ? '<br>' + enc(groupName(d[6])) : '');
      }},
      dataZoom: [{type: 'inside', xAxisIndex: 0}, {type: 'slider', xAxisIndex: 0, bottom: 10}],
      xAxis: {type: 'value', name: 'task', nameLocation: 'middle', nameGap: 24, minInterval: 1, scale: true},
      yAxis: {type: 'value', name: 'MiB'},
      series: series
    });
  })();

  /* ------------------------------------------------------------ groups */
  (function () {
    var gs = data.groups;
    var tb = document.getElementById('groups-body');
    gs.forEach(function (g) {
      var tr = el('tr', {'data-group': g.id});
      var s = g.suggest;
      [['', '[' + g.id + ']'], ['cmd', g.command], ['', g.tasks], ['', g.attempts], ['', g.oom_attempts],
       ['', size(g.peak_max)], ['', size(g.peak_mean === null ? null : Math.round(g.peak_mean))],
       ['', g.limit_min === g.limit_max ? size(g.limit_max) : size(g.limit_min) + ' \u2013 ' + size(g.limit_max)],
       ['', pct(g.use_mean)], ['', mt(g.memory_time)],
       ['sug', s ? s.text + (s.lower_bound ? ' (at least)' : '') : '\u2014'],
       ['', s && s.saves !== null ? (s.saves >= 0 ? '' : '+') + mt(Math.abs(s.saves)) : '\u2014']
      ].forEach(function (c) { tr.appendChild(el('td', c[0] ? {'class': c[0]} : null, c[1])); });
      tb.appendChild(tr);
    });
    var shown = gs.slice(0, 30);
    chart('chart-groups').setOption({
      animation: false,
      legend: {top: 0},
      tooltip: {trigger: 'axis', formatter: function (items) {
        var id = shown[items[0].dataIndex].id;
        return enc(groupName(id)) + items.map(function (it) {
          return '<br>' + enc(it.seriesName) + ': ' + (it.value === null ? '\u2014' : it.value.toFixed(1) + ' MiB');
        }).join('');
      }},
      grid: {left: 60, right: 20, top: 40, bottom: 30},
      xAxis: {type: 'category', data: shown.map(function (g) { return '[' + g.id + ']'; })},
      yAxis: {type: 'value', name: 'MiB'},
      series: [
        {name: 'peak (mean)', type: 'bar', data: shown.map(function (g) { return mib(g.peak_mean); }), itemStyle: {color: '#7fb3d5'}},
        {name: 'peak (max)', type: 'bar', data: shown.map(function (g) { return mib(g.peak_max); }), itemStyle: {color: '#2471a3'}},
        {name: 'first limit', type: 'bar', data: shown.map(function (g) { return mib(g.first_limit_max); }), itemStyle: {color: '#d62c1a'}},
        {name: 'suggested', type: 'bar', data: shown.map(function (g) { return g.suggest ? mib(g.suggest.memory) : null; }), itemStyle: {color: '#2e9e5b'}}
      ]
    });
    document.getElementById('headroom').textContent = '\u00d7' + data.headroom.toFixed(2);
  })();

  /* ------------------------------------------------------------ retry ladder */
  (function () {
    var cells = data.ladder.slice().sort(function (a, b) {
      return a.attempt - b.attempt || (a.limit === null) - (b.limit === null) || a.limit - b.limit;
    });
    var cats = cells.map(function (c) { return 'attempt ' + c.attempt + '\n' + (c.limit === null ? 'no limit' : size(c.limit)); });
    var present = OUTCOMES.filter(function (o) {
      return cells.some(function (c) { return c.outcomes[o]; });
    });
    var retried = cells.some(function (c) { return c.attempt > 1; });
    document.getElementById('ladder-note').textContent = retried
      ? 'Each bar: the attempts that ran with that attempt number and memory limit, by how they ended. A task OOM-killed at its limit climbs to the next bar.'
      : 'No task was retried: every attempt is attempt 1.';
    chart('chart-ladder').setOption({
      animation: false,
      legend: {top: 0},
      tooltip: {trigger: 'axis', axisPointer: {type: 'shadow'}},
      grid: {left: 50, right: 20, top: 36, bottom: 56},
      xAxis: {type: 'category', data: cats, axisLabel: {interval: 0, margin: 14, lineHeight: 15}},
      yAxis: {type: 'value', name: 'attempts', minInterval: 1},
      series: present.map(function (o) {
        return {name: o, type: 'bar', stack: 'n', itemStyle: {color: COLORS[o]},
                data: cells.map(function (c) { return c.outcomes[o] || 0; })};
      })
    });
  })();

  /* ------------------------------------------------------------ timelines */
  (function () {
    var tls = data.timelines, sel = document.getElementById('timeline-select');
    var note = document.getElementById('timeline-note'), vict = document.getElementById('timeline-victims');
    if (!tls.length) {
      note.textContent = data.timeline_records
        ? 'The timelines of this report could not be read.'
        : 'No memory timelines in this report: a record carries one when its batch sampled memory over time.';
      document.getElementById('chart-timeline').style.display = 'none';
      sel.style.display = 'none';
      return;
    }
    note.textContent = 'Memory in use over the attempt\'s life (' + tls.length + ' of ' + data.timeline_records +
      ' attempts that have a timeline: the first OOM kills, the biggest, the slowest). The dashed line is the limit; an OOM kill is marked where the attempt ended.';
    tls.forEach(function (t, i) {
      sel.appendChild(el('option', {value: i}, 'task ' + t.seq + ' attempt ' + t.attempt + ' \u00b7 ' + t.outcome +
        ' \u00b7 ' + t.why + (t.memory_max !== null ? ' \u00b7 limit ' + size(t.memory_max) : '')));
    });
    var c = chart('chart-timeline');
    function show(i) {
      var t = tls[i], pts = t.t.map(function (x, k) { return [x, mib(t.current[k])]; });
      var marks = [];
      if (t.peak_index !== null && pts[t.peak_index])
        marks.push({name: 'peak', coord: pts[t.peak_index], value: 'peak', itemStyle: {color: '#2471a3'}});
      var killed = /oom/.test(t.outcome);
      if (killed && pts.length)
        marks.push({name: 'OOM kill', coord: pts[pts.length - 1], value: 'kill', symbol: 'pin', symbolSize: 46,
                    itemStyle: {color: '#d62c1a'}});
      var top = Math.max(mib(t.memory_max || 0), Math.max.apply(null, pts.map(function (p) { return p[1]; })));
      c.setOption({
        animation: false,
        title: {text: 'task ' + t.seq + ' attempt ' + t.attempt + ' (' + t.outcome + ')', left: 'center', textStyle: {fontSize: 13}},
        tooltip: {trigger: 'axis', valueFormatter: function (v) { return typeof v === 'number' ? v.toFixed(1) + ' MiB' : v; }},
        grid: {left: 60, right: 40, top: 40, bottom: 60},
        dataZoom: [{type: 'inside'}, {type: 'slider', bottom: 8}],
        xAxis: {type: 'value', name: 's', min: 0},
        yAxis: {type: 'value', name: 'MiB', max: top ? Math.ceil(top * 1.08) : null},
        series: [{
          name: 'memory', type: 'line', showSymbol: false, data: pts, areaStyle: {opacity: 0.12},
          itemStyle: {color: '#2471a3'},
          markLine: t.memory_max === null ? undefined : {symbol: 'none', silent: true,
            lineStyle: {color: '#d62c1a', type: 'dashed', width: 2},
            label: {formatter: 'limit ' + size(t.memory_max), position: 'insideStartTop'},
            data: [{yAxis: mib(t.memory_max), name: 'limit'}]},
          markPoint: {data: marks, label: {fontSize: 10}}
        }]
      }, true);
      var lines = [];
      if (t.sentence) lines.push(t.sentence);
      (t.oom_victims || []).forEach(function (v) {
        lines.push('killed: ' + (v.comm || '?') + ' (pid ' + v.pid + ', anon-rss ' + size(v.anon_rss) +
          (v.total_vm !== undefined ? ', total-vm ' + size(v.total_vm) : '') + ')');
      });
      if (t.oom_memcg) lines.push('limit that fired: ' + t.oom_memcg);
      if (t.memory_stall_some !== null && t.wall_time > 0)
        lines.push('stalled on memory ' + pct(t.memory_stall_some / t.wall_time) + ' of its wall time (some), ' +
                   pct(t.memory_stall_full / t.wall_time) + ' (full)');
      if (t.points > t.t.length) lines.push(t.points + ' samples, ' + t.t.length + ' drawn (each slice\'s lowest and highest, the first, the last and the peak)');
      vict.textContent = lines.join('\n');
    }
    sel.addEventListener('change', function () { show(+sel.value); });
    show(0);
  })();

  /* ------------------------------------------------------------ slowest / biggest */
  function topTable(id, rows, byPeak) {
    var tb = document.getElementById(id);
    rows.forEach(function (e) {
      var tr = el('tr');
      [byPeak ? size(e.memory_peak) : secs(e.wall_time), 'task ' + e.seq + ' #' + e.attempt, e.outcome,
       byPeak ? size(e.memory_max) : size(e.memory_peak), e.group ? '[' + e.group + ']' : '', e.command
      ].forEach(function (v, k) { tr.appendChild(el('td', k === 5 ? {'class': 'cmd'} : null, v)); });
      tb.appendChild(tr);
    });
  }
  topTable('slowest-body', data.slowest, false);
  topTable('biggest-body', data.biggest, true);

  /* ------------------------------------------------------------ victims by name */
  (function () {
    var box = document.getElementById('comms');
    if (!data.oom_victim_comms.length) {
      box.textContent = 'No OOM victims named in this report (records name them when corral could read the kernel log).';
      return;
    }
    box.textContent = 'Processes the OOM killer took: ' + data.oom_victim_comms.map(function (c) {
      return c.comm + ' \u00d7' + c.count + ' (up to ' + size(c.anon_rss_max) + ' resident)';
    }).join(', ');
  })();

  window.addEventListener('resize', function () {
    for (var k in charts) charts[k].resize();
  });
  window.corralReport = {data: data, charts: charts};
  document.body.setAttribute('data-ready', '1');
})();
