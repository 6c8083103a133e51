// SPDX-License-Identifier: Apache-2.0
//
// app.js - Seismo's web UI: the graph page (a PromQL box with completion of
// metric names, label names and label values; a time range; a graph of
// /api/v1/query_range and a table of /api/v1/query; an optional baseline
// band) and the anomalies page (anomaly rules with their top-scoring series
// drawn against their baseline bands, and the archive of reports).
// docs/UI.md describes it; ingest/ui.c serves it.
//
// The page state lives in the URL (/graph?expr=..&range=1h&tab=graph&band=1,
// or start=/end= for a custom range), so loading a URL runs its query; that
// is how tests/ingest/test_ui.c drives it in a headless browser.  What the
// page has done is written to data- attributes for that test: on #graph
// data-state (idle, loading, drawn, empty, error), data-series-count,
// data-band-count and data-error; on #result-table data-state and
// data-row-count; on #rules and #reports data-state (loading, loaded,
// unavailable, error).  boot.js counts errors into <html data-console-errors>.
//
// Everything the server says is put into the page as text, never as HTML.
// Nothing here needs a build step or the network beyond this server.
(function () {
  'use strict';

  var $ = function (id) { return document.getElementById(id); };

  // ---- the HTTP API ----

  // The API's own error text ("bad_data: parse error at char 4: ...") or
  // the body of a non-JSON answer, prefixed with the HTTP status.
  function ApiError(message, status) {
    this.name = 'ApiError';
    this.message = message;
    this.status = status;
  }
  ApiError.prototype = Object.create(Error.prototype);

  function api(path, params) {
    var url = path;
    if (params) {
      var q = new URLSearchParams();
      Object.keys(params).forEach(function (k) {
        var v = params[k];
        if (Array.isArray(v)) v.forEach(function (x) { q.append(k, x); });
        else if (v !== undefined && v !== null) q.append(k, String(v));
      });
      url += '?' + q.toString();
    }
    return fetch(url, { headers: { Accept: 'application/json' } }).then(function (resp) {
      return resp.text().then(function (text) {
        var body = null;
        try { body = JSON.parse(text); } catch (e) { body = null; }
        if (resp.ok && body && body.status === 'success') return body;
        var msg;
        if (body && body.error) msg = (body.errorType ? body.errorType + ': ' : '') + body.error;
        else msg = text.trim() || resp.statusText || 'no answer';
        throw new ApiError(resp.status + ' ' + msg, resp.status);
      });
    }, function (e) {
      throw new ApiError('cannot reach the server: ' + e.message, 0);
    });
  }

  // ---- durations, times, series names ----

  var UNIT_S = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };

  // "1h30m" -> 5400; NaN when it is not a Prometheus duration.
  function parseDuration(s) {
    s = String(s || '').trim();
    if (/^\d+(\.\d+)?$/.test(s)) return parseFloat(s);
    var re = /(\d+)(ms|s|m|h|d|w|y)/g, total = 0, pos = 0, m;
    while ((m = re.exec(s)) !== null) {
      if (m.index !== pos) return NaN;
      total += parseInt(m[1], 10) * UNIT_S[m[2]];
      pos = re.lastIndex;
    }
    return pos === s.length && pos > 0 ? total : NaN;
  }

  function formatDuration(sec) {
    var parts = [], units = [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]];
    sec = Math.round(sec);
    units.forEach(function (u) {
      if (sec >= u[1]) { parts.push(Math.floor(sec / u[1]) + u[0]); sec %= u[1]; }
    });
    return parts.join('') || '0s';
  }

  // Unix seconds or anything Date.parse reads (RFC 3339); NaN otherwise.
  function parseTime(s) {
    if (s === null || s === undefined || s === '') return NaN;
    if (/^-?\d+(\.\d+)?$/.test(s)) return parseFloat(s);
    var ms = Date.parse(s);
    return isNaN(ms) ? NaN : ms / 1000;
  }

  // The value of an <input type="datetime-local"> (local time) for a time.
  function toLocalInput(sec) {
    var d = new Date(sec * 1000);
    var p = function (n) { return (n < 10 ? '0' : '') + n; };
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' +
      p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
  }

  function formatValue(s) {
    if (s === '+Inf') return Infinity;
    if (s === '-Inf') return -Infinity;
    return parseFloat(s);
  }

  // {__name__="up", job="a"} -> up{job="a"}, as Prometheus prints it.
  function seriesName(metric) {
    metric = metric || {};
    var name = metric.__name__ || '';
    var labels = Object.keys(metric).filter(function (k) { return k !== '__name__'; }).sort();
    if (!labels.length) return name || '{}';
    return name + '{' + labels.map(function (k) {
      return k + '="' + String(metric[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') + '"';
    }).join(', ') + '}';
  }

  // The identity used to pair a series with its baseline: the labels
  // without __name__, which functions drop.
  function seriesKey(metric) {
    var m = {};
    Object.keys(metric || {}).sort().forEach(function (k) { if (k !== '__name__') m[k] = metric[k]; });
    return JSON.stringify(m);
  }

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') e.textContent = attrs[k];
      else if (k === 'class') e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }

  function showError(box, msg) {
    box.textContent = msg || '';
    box.hidden = !msg;
  }

  // ---- drawing with dygraphs ----

  // Why dygraphs may be missing: the server's 503 names the Debian package.
  var libProblem = null;
  function checkLibrary() {
    if (typeof window.Dygraph === 'function') return Promise.resolve(null);
    return fetch('/ui/lib/dygraph.min.js').then(function (r) {
      return r.ok ? 'the plotting library loaded but did not start' : r.text().then(function (t) {
        return 'cannot draw graphs: ' + (t.trim() || r.status + ' ' + r.statusText);
      });
    }, function (e) {
      return 'cannot draw graphs: ' + e.message;
    }).then(function (msg) { libProblem = msg; return msg; });
  }

  // Rows for dygraphs from matrices: columns[i] = {name, kind, series...}.
  // kind 'line' has values; kind 'band' has lower, expected, upper.  With
  // bars on, every cell is [low, mid, high] (a plain line is [v, v, v]) as
  // dygraphs' customBars wants; without, a number.  Missing points are null,
  // drawn as gaps; infinities are left out (dygraphs cannot place them).
  function buildRows(columns, bars) {
    var times = new Map();
    function cellsOf(values) {
      var m = new Map();
      (values || []).forEach(function (p) {
        var t = Math.round(p[0] * 1000), v = formatValue(p[1]);
        if (isFinite(v)) m.set(t, v);
        times.set(t, true);
      });
      return m;
    }
    var maps = columns.map(function (c) {
      if (c.kind === 'line') return { v: cellsOf(c.values) };
      return { lo: cellsOf(c.lower), ex: cellsOf(c.expected), hi: cellsOf(c.upper) };
    });
    var ts = Array.from(times.keys()).sort(function (a, b) { return a - b; });
    return ts.map(function (t) {
      var row = [new Date(t)];
      maps.forEach(function (m) {
        if (m.v) {
          var v = m.v.has(t) ? m.v.get(t) : null;
          row.push(bars ? (v === null ? null : [v, v, v]) : v);
        } else {
          var ex = m.ex.has(t) ? m.ex.get(t) : null;
          if (ex === null) { row.push(null); return; }
          var lo = m.lo.has(t) ? m.lo.get(t) : ex, hi = m.hi.has(t) ? m.hi.get(t) : ex;
          row.push([lo, ex, hi]);
        }
      });
      return row;
    });
  }

  // The i-th of well-spread hues (golden angle), as #rrggbb for dygraphs.
  function colorFor(i) {
    var h = (i * 137.508) % 360, s = 0.65, l = 0.42, a = s * Math.min(l, 1 - l);
    var f = function (n) {
      var k = (n + h / 30) % 12, c = l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
      return ('0' + Math.round(c * 255).toString(16)).slice(-2);
    };
    return '#' + f(0) + f(8) + f(4);
  }

  // Draw into div; returns the Dygraph (or null when there is nothing).
  // Columns with the same key (a series and its baseline) share a color.
  function plot(div, legend, columns, opts) {
    var bars = columns.some(function (c) { return c.kind === 'band'; });
    var rows = buildRows(columns, bars);
    if (!rows.length) return null;
    var keys = new Map();
    var colors = columns.map(function (c) {
      var k = c.key || c.name;
      if (!keys.has(k)) keys.set(k, colorFor(keys.size));
      return keys.get(k);
    });
    var o = {
      labels: ['time'].concat(columns.map(function (c) { return c.name; })),
      colors: colors,
      customBars: bars,
      legend: 'always',
      labelsSeparateLines: true,
      labelsKMB: true,
      connectSeparatedPoints: false,
      highlightSeriesOpts: { strokeWidth: 2 },
      animatedZooms: false,
    };
    if (legend) o.labelsDiv = legend;
    Object.keys(opts || {}).forEach(function (k) { o[k] = opts[k]; });
    return new window.Dygraph(div, rows, o);
  }

  // ---- the graph page ----

  var RANGES = ['5m', '1h', '6h', '24h', '7d'];
  var MAX_SERIES_DRAWN = 500;
  var graph = null;        // the Dygraph on the graph page
  var lastRun = {};        // tab -> the state string it last ran for

  function readState() {
    var q = new URLSearchParams(location.search);
    var range = q.get('range') || '1h';
    if (q.get('start') && q.get('end')) range = 'custom';
    return {
      expr: q.get('expr') || '',
      range: RANGES.indexOf(range) >= 0 || range === 'custom' || !isNaN(parseDuration(range)) ? range : '1h',
      start: q.get('start') || '',
      end: q.get('end') || '',
      step: q.get('step') || '',
      tab: q.get('tab') === 'table' ? 'table' : 'graph',
      band: q.get('band') === '1',
    };
  }

  function stateToForm(s) {
    $('expr').value = s.expr;
    var sel = $('range');
    if (s.range !== 'custom' && RANGES.indexOf(s.range) < 0) {
      sel.appendChild(el('option', { value: s.range, text: 'last ' + s.range }));
    }
    sel.value = s.range;
    $('custom-range').hidden = s.range !== 'custom';
    var st = parseTime(s.start), en = parseTime(s.end);
    if (!isNaN(st)) $('start').value = toLocalInput(st);
    if (!isNaN(en)) $('end').value = toLocalInput(en);
    $('step').value = s.step;
    $('band').checked = s.band;
    selectTab(s.tab);
  }

  function formToState() {
    var s = {
      expr: $('expr').value.trim(),
      range: $('range').value,
      start: '', end: '',
      step: $('step').value.trim(),
      tab: $('tab-table').classList.contains('active') ? 'table' : 'graph',
      band: $('band').checked,
    };
    if (s.range === 'custom') {
      var st = parseTime($('start').value), en = parseTime($('end').value);
      if (!isNaN(st)) s.start = new Date(st * 1000).toISOString();
      if (!isNaN(en)) s.end = new Date(en * 1000).toISOString();
    }
    return s;
  }

  function stateToURL(s) {
    var q = new URLSearchParams();
    if (s.expr) q.set('expr', s.expr);
    if (s.range === 'custom') { q.set('start', s.start); q.set('end', s.end); } else q.set('range', s.range);
    if (s.step) q.set('step', s.step);
    if (s.tab !== 'graph') q.set('tab', s.tab);
    if (s.band) q.set('band', '1');
    return '/graph?' + q.toString();
  }

  // {start, end, step} in seconds, or {error}.
  function timeWindow(s) {
    var start, end;
    if (s.range === 'custom') {
      start = parseTime(s.start);
      end = parseTime(s.end);
      if (isNaN(start) || isNaN(end)) return { error: 'choose a start and an end for the custom range' };
      if (end <= start) return { error: 'the end of the range must be after its start' };
    } else {
      end = Date.now() / 1000;
      start = end - parseDuration(s.range);
    }
    var step;
    if (s.step) {
      step = parseDuration(s.step);
      if (!(step > 0)) return { error: 'step "' + s.step + '" is not a duration such as 15s or 1m' };
    } else {
      step = Math.max(1, Math.floor((end - start) / 250));
    }
    return { start: start, end: end, step: step };
  }

  function selectTab(tab) {
    ['graph', 'table'].forEach(function (t) {
      $('tab-' + t).classList.toggle('active', t === tab);
      $('tab-' + t).setAttribute('aria-selected', t === tab ? 'true' : 'false');
    });
    $('graph-view').hidden = tab !== 'graph';
    $('table-view').hidden = tab !== 'table';
  }

  function setGraphState(state, extra) {
    var g = $('graph');
    g.setAttribute('data-state', state);
    ['data-series-count', 'data-band-count', 'data-error'].forEach(function (a) { g.removeAttribute(a); });
    Object.keys(extra || {}).forEach(function (k) { g.setAttribute(k, String(extra[k])); });
  }

  function clearGraph(message) {
    if (graph) { graph.destroy(); graph = null; }
    var g = $('graph');
    g.textContent = '';
    $('graph-legend').textContent = '';
    if (message) g.appendChild(el('p', { class: 'placeholder', text: message }));
  }

  // Pair each expected series with its lower and upper by labels.
  function bandColumns(lower, expected, upper) {
    var byKey = function (res) {
      var m = new Map();
      (res || []).forEach(function (s) { m.set(seriesKey(s.metric), s); });
      return m;
    };
    var lo = byKey(lower), hi = byKey(upper);
    return (expected || []).map(function (s) {
      var k = seriesKey(s.metric);
      return {
        name: 'baseline ' + seriesName(s.metric),
        kind: 'band',
        key: k,
        lower: lo.has(k) ? lo.get(k).values : [],
        expected: s.values,
        upper: hi.has(k) ? hi.get(k).values : [],
      };
    });
  }

  function runGraph(s) {
    var w = timeWindow(s);
    showError($('band-error'), '');
    if (w.error) { failGraph(w.error); return Promise.resolve(); }
    setGraphState('loading');
    var params = { query: s.expr, start: w.start.toFixed(3), end: w.end.toFixed(3), step: w.step };
    var t0 = performance.now();
    var main = api('/api/v1/query_range', params);
    var bands = null;
    if (s.band) {
      bands = Promise.all(['baseline_lower', 'baseline_expected', 'baseline_upper'].map(function (f) {
        return api('/api/v1/query_range', Object.assign({}, params, { query: f + '(' + s.expr + ')' }));
      })).then(function (r) {
        return { lower: r[0].data.result, expected: r[1].data.result, upper: r[2].data.result };
      }, function (e) { return { error: e.message }; });
    }
    return Promise.all([main, bands]).then(function (res) {
      var body = res[0], band = res[1];
      if (body.data.resultType !== 'matrix') throw new ApiError('expected a range query result, got ' + body.data.resultType, 200);
      var result = body.data.result;
      var info = ['step ' + formatDuration(w.step), result.length + ' series',
        Math.round(performance.now() - t0) + ' ms'];
      if (body.warnings && body.warnings.length) info.push('warnings: ' + body.warnings.join('; '));
      var cols = result.slice(0, MAX_SERIES_DRAWN).map(function (r) {
        return { name: seriesName(r.metric), kind: 'line', key: seriesKey(r.metric), values: r.values };
      });
      if (result.length > MAX_SERIES_DRAWN) info.push('only the first ' + MAX_SERIES_DRAWN + ' are drawn');
      var bandCols = [];
      if (band && band.error) showError($('band-error'), 'baseline band: ' + band.error);
      else if (band) bandCols = bandColumns(band.lower, band.expected, band.upper);
      $('query-info').textContent = info.join(' \u00b7 ');
      if (libProblem) { failGraph(libProblem); return; }
      clearGraph(cols.length + bandCols.length ? '' : 'no data in this range');
      graph = plot($('graph'), $('graph-legend'), cols.concat(bandCols), { ylabel: '' });
      if (!graph) {
        clearGraph('no data in this range');
        setGraphState('empty', { 'data-series-count': 0, 'data-band-count': 0 });
        return;
      }
      setGraphState('drawn', { 'data-series-count': cols.length, 'data-band-count': bandCols.length });
    }).catch(function (e) { failGraph(e.message); });
  }

  function failGraph(msg) {
    clearGraph('');
    showError($('query-error'), msg);
    setGraphState('error', { 'data-error': msg });
  }

  function runTable(s) {
    var w = timeWindow(s);
    var table = $('result-table'), tbody = table.tBodies[0];
    tbody.textContent = '';
    if (w.error) {
      showError($('query-error'), w.error);
      table.setAttribute('data-state', 'error');
      table.setAttribute('data-error', w.error);
      return Promise.resolve();
    }
    table.setAttribute('data-state', 'loading');
    table.removeAttribute('data-error');
    var t0 = performance.now();
    return api('/api/v1/query', { query: s.expr, time: w.end.toFixed(3) }).then(function (body) {
      var d = body.data, rows = [];
      if (d.resultType === 'vector') {
        rows = d.result.map(function (r) { return [seriesName(r.metric), r.value[1]]; });
      } else if (d.resultType === 'matrix') {
        rows = d.result.map(function (r) {
          return [seriesName(r.metric), r.values.map(function (p) { return p[1] + ' @' + p[0]; }).join('\n')];
        });
      } else if (d.resultType === 'scalar' || d.resultType === 'string') {
        rows = [[d.resultType, d.result[1]]];
      }
      rows.forEach(function (r) {
        tbody.appendChild(el('tr', {}, [el('td', { class: 'series', text: r[0] }), el('td', { class: 'value', text: r[1] })]));
      });
      if (!rows.length) tbody.appendChild(el('tr', {}, [el('td', { colspan: '2', class: 'placeholder', text: 'no data at this time' })]));
      var info = [d.resultType, rows.length + ' result' + (rows.length === 1 ? '' : 's'),
        'at ' + new Date(w.end * 1000).toISOString(), Math.round(performance.now() - t0) + ' ms'];
      if (body.warnings && body.warnings.length) info.push('warnings: ' + body.warnings.join('; '));
      $('query-info').textContent = info.join(' \u00b7 ');
      table.setAttribute('data-state', 'loaded');
      table.setAttribute('data-row-count', String(rows.length));
    }).catch(function (e) {
      showError($('query-error'), e.message);
      table.setAttribute('data-state', 'error');
      table.setAttribute('data-error', e.message);
    });
  }

  // Run what the current tab shows, unless it already shows this state.
  function execute(s, force) {
    var key = JSON.stringify(s);
    if (!s.expr) return Promise.resolve();
    if (!force && lastRun[s.tab] === key) return Promise.resolve();
    lastRun[s.tab] = key;
    showError($('query-error'), '');
    return s.tab === 'table' ? runTable(s) : runGraph(s);
  }

  function submit() {
    var s = formToState();
    lastRun = {};
    history.pushState(null, '', stateToURL(s));
    closeCompletions();
    return execute(s, true);
  }

  function initGraphPage() {
    $('query-form').addEventListener('submit', function (e) { e.preventDefault(); submit(); });
    $('range').addEventListener('change', function () {
      var custom = $('range').value === 'custom';
      $('custom-range').hidden = !custom;
      if (custom && !$('start').value) {
        var now = Date.now() / 1000;
        $('start').value = toLocalInput(now - 3600);
        $('end').value = toLocalInput(now);
      }
    });
    document.querySelectorAll('.tab').forEach(function (b) {
      b.addEventListener('click', function () {
        selectTab(b.getAttribute('data-tab'));
        var s = formToState();
        history.replaceState(null, '', stateToURL(s));
        execute(s, false);
      });
    });
    initCompletion();
  }

  // ---- completion in the PromQL box ----

  var FUNCTIONS = ['abs', 'absent', 'absent_over_time', 'avg_over_time', 'ceil', 'changes', 'clamp', 'clamp_max',
    'clamp_min', 'count_over_time', 'day_of_month', 'day_of_week', 'day_of_year', 'days_in_month', 'delta', 'deriv',
    'exp', 'floor', 'histogram_quantile', 'holt_winters', 'hour', 'idelta', 'increase', 'irate', 'label_join',
    'label_replace', 'last_over_time', 'ln', 'log10', 'log2', 'max_over_time', 'min_over_time', 'minute', 'month',
    'predict_linear', 'present_over_time', 'quantile_over_time', 'rate', 'resets', 'round', 'scalar', 'sgn', 'sort',
    'sort_desc', 'sqrt', 'stddev_over_time', 'stdvar_over_time', 'sum_over_time', 'time', 'timestamp', 'vector',
    'year', 'baseline_expected', 'baseline_lower', 'baseline_upper', 'anomaly_score'];
  var AGGREGATIONS = ['sum', 'avg', 'min', 'max', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile',
    'count_values', 'group'];
  var KEYWORDS = ['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'and', 'or', 'unless'];

  var names = { metrics: null, labels: null, values: new Map() };
  var comp = { items: [], index: 0, from: 0, to: 0, suffix: '' };

  function loadNames() {
    var ex = $('expr');
    var got = function (what) { return function (b) { names[what] = b.data || []; }; };
    var none = function (what) { return function () { names[what] = []; ex.setAttribute('data-completion-' + what, 'unavailable'); }; };
    return Promise.all([
      api('/api/v1/label/__name__/values').then(got('metrics'), none('metrics')),
      api('/api/v1/labels').then(got('labels'), none('labels')),
    ]).then(function () { ex.setAttribute('data-completion', 'ready'); });
  }

  function labelValues(label) {
    if (names.values.has(label)) return Promise.resolve(names.values.get(label));
    return api('/api/v1/label/' + encodeURIComponent(label) + '/values').then(function (b) {
      names.values.set(label, b.data || []);
      return b.data || [];
    }, function () { return []; });
  }

  // What the caret is in: {kind: 'metric'|'label'|'value', from, to, word,
  // label}.  from/to delimit the text a choice replaces.
  function completionContext(text, caret) {
    var before = text.slice(0, caret);
    var open = before.lastIndexOf('{'), close = before.lastIndexOf('}');
    var m;
    if (open > close) {
      var inner = before.slice(open + 1);
      var part = inner.slice(Math.max(inner.lastIndexOf(','), -1) + 1);
      m = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)$/.exec(part);
      if (m) return { kind: 'value', label: m[1], word: m[3], from: caret - m[3].length, to: caret, suffix: '"' };
      m = /([a-zA-Z_][a-zA-Z0-9_]*)?$/.exec(part);
      if (/^\s*[a-zA-Z_0-9]*$/.test(part)) return { kind: 'label', word: m[0], from: caret - m[0].length, to: caret, suffix: '' };
      return null;
    }
    if (/"[^"]*$/.test(before.replace(/"(?:[^"\\]|\\.)*"/g, ''))) return null; // inside a string
    m = /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)$/.exec(before);
    if (m) {
      var w = /([a-zA-Z_][a-zA-Z0-9_]*)?$/.exec(m[2])[0];
      return { kind: 'label', word: w, from: caret - w.length, to: caret, suffix: '' };
    }
    m = /([a-zA-Z_:][a-zA-Z0-9_:]*)$/.exec(before);
    if (!m) return null;
    return { kind: 'metric', word: m[1], from: caret - m[1].length, to: caret, suffix: '' };
  }

  // Prefix matches first, then other substring matches; at most 50.
  function rank(candidates, word) {
    var w = word.toLowerCase(), pre = [], sub = [];
    candidates.forEach(function (c) {
      var l = c.toLowerCase();
      if (l === w) return;
      if (l.indexOf(w) === 0) pre.push(c);
      else if (w && l.indexOf(w) > 0) sub.push(c);
    });
    return pre.concat(sub).slice(0, 50);
  }

  function updateCompletions() {
    var ex = $('expr');
    var ctx = completionContext(ex.value, ex.selectionStart);
    if (!ctx || (ctx.kind === 'metric' && !ctx.word)) { closeCompletions(); return; }
    var list;
    if (ctx.kind === 'value') list = labelValues(ctx.label);
    else if (ctx.kind === 'label') list = Promise.resolve(names.labels || []);
    else {
      list = Promise.resolve((names.metrics || []).map(function (n) { return { text: n, kind: 'metric' }; })
        .concat(FUNCTIONS.map(function (n) { return { text: n, kind: 'function' }; }))
        .concat(AGGREGATIONS.map(function (n) { return { text: n, kind: 'aggregation' }; }))
        .concat(KEYWORDS.map(function (n) { return { text: n, kind: 'keyword' }; })));
    }
    var at = ex.value + '\u0000' + ex.selectionStart;
    list.then(function (items) {
      if (ex.value + '\u0000' + ex.selectionStart !== at) return; // typed on meanwhile
      var kinds = new Map();
      var texts = items.map(function (i) {
        if (typeof i === 'string') { kinds.set(i, ctx.kind === 'value' ? 'value' : 'label'); return i; }
        if (!kinds.has(i.text)) kinds.set(i.text, i.kind);
        return i.text;
      });
      var ranked = rank(Array.from(new Set(texts)), ctx.word);
      if (!ranked.length) { closeCompletions(); return; }
      comp = { items: ranked, index: 0, from: ctx.from, to: ctx.to, suffix: ctx.suffix };
      var ul = $('completions');
      ul.textContent = '';
      ranked.forEach(function (t, i) {
        var li = el('li', { role: 'option', 'data-kind': kinds.get(t) }, [
          el('span', { class: 'text', text: t }), el('span', { class: 'kind', text: kinds.get(t) })]);
        if (i === 0) li.classList.add('active');
        li.addEventListener('mousedown', function (e) { e.preventDefault(); comp.index = i; acceptCompletion(); });
        ul.appendChild(li);
      });
      ul.hidden = false;
    });
  }

  function closeCompletions() {
    $('completions').hidden = true;
    comp.items = [];
  }

  function moveCompletion(d) {
    var lis = $('completions').children;
    if (!lis.length) return;
    lis[comp.index].classList.remove('active');
    comp.index = (comp.index + d + lis.length) % lis.length;
    lis[comp.index].classList.add('active');
    lis[comp.index].scrollIntoView({ block: 'nearest' });
  }

  function acceptCompletion() {
    var ex = $('expr'), t = comp.items[comp.index];
    if (t === undefined) return;
    var v = ex.value, after = v.slice(comp.to);
    var suffix = comp.suffix && after.charAt(0) !== comp.suffix ? comp.suffix : '';
    if (comp.suffix === '"') t = t.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
    ex.value = v.slice(0, comp.from) + t + suffix + after;
    var caret = comp.from + t.length + suffix.length;
    ex.setSelectionRange(caret, caret);
    closeCompletions();
    ex.focus();
  }

  function initCompletion() {
    var ex = $('expr');
    ex.addEventListener('input', updateCompletions);
    ex.addEventListener('blur', closeCompletions);
    ex.addEventListener('keydown', function (e) {
      var open = !$('completions').hidden;
      if (open && e.key === 'ArrowDown') { e.preventDefault(); moveCompletion(1); }
      else if (open && e.key === 'ArrowUp') { e.preventDefault(); moveCompletion(-1); }
      else if (open && (e.key === 'Tab' || (e.key === 'Enter' && !e.shiftKey))) { e.preventDefault(); acceptCompletion(); }
      else if (open && e.key === 'Escape') { e.preventDefault(); closeCompletions(); }
      else if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); submit(); }
    });
    loadNames();
  }

  // ---- the anomalies page ----

  // A rule list in any of the shapes the rules API may take: data.rules,
  // data.groups[].rules (Prometheus's /api/v1/rules), or data itself.
  function rulesOf(data) {
    if (Array.isArray(data)) return data;
    if (data && Array.isArray(data.rules)) return data.rules;
    if (data && Array.isArray(data.groups)) {
      return data.groups.reduce(function (acc, g) { return acc.concat(g.rules || []); }, []);
    }
    return [];
  }

  function ruleExpr(rule) { return rule.expr || rule.query || rule.expression || ''; }

  function unavailable(box, what, path) {
    box.textContent = '';
    box.appendChild(el('p', { class: 'note', text: what + ' are not available on this server yet (GET ' + path + ' answered 404).' }));
    box.setAttribute('data-state', 'unavailable');
  }

  function failed(box, msg) {
    box.textContent = '';
    box.appendChild(el('p', { class: 'error', text: msg }));
    box.setAttribute('data-state', 'error');
    box.setAttribute('data-error', msg);
  }

  var anomGraphs = [];

  function loading(box) {
    box.setAttribute('data-state', 'loading');
    box.removeAttribute('data-error');
    box.textContent = 'loading\u2026';
    return box;
  }

  function loadAnomalies() {
    anomGraphs.forEach(function (g) { g.destroy(); });
    anomGraphs = [];
    return Promise.all([loadRules(), loadReports()]);
  }

  function loadRules() {
    var box = loading($('rules'));
    return api('/api/v1/rules/anomaly').then(function (body) {
      var rules = rulesOf(body.data);
      box.textContent = '';
      box.setAttribute('data-rule-count', String(rules.length));
      if (!rules.length) box.appendChild(el('p', { class: 'placeholder', text: 'no anomaly rules are configured' }));
      var w = parseDuration($('anom-range').value), end = Date.now() / 1000;
      var top = Math.max(1, Math.min(20, parseInt($('anom-top').value, 10) || 3));
      var runs = rules.map(function (r) { return showRule(box, r, end - w, end, top); });
      return Promise.all(runs).then(function () { box.setAttribute('data-state', 'loaded'); });
    }, function (e) {
      if (e.status === 404) unavailable(box, 'Anomaly rules', '/api/v1/rules/anomaly');
      else failed(box, 'cannot list the anomaly rules: ' + e.message);
    });
  }

  // The queries behind a rule's card.  A rule the server runs writes
  // anomaly:score/value/expected/lower/upper{rule="<name>"} (docs/RULES.md),
  // so those are read first; a rule that has not written any yet is scored
  // on the spot with anomaly_score(EXPR) and baseline_*(EXPR).
  function recordedQueries(name) {
    var sel = '{rule="' + name.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"}';
    return { score: 'anomaly:score' + sel, value: 'anomaly:value' + sel, lower: 'anomaly:lower' + sel,
      expected: 'anomaly:expected' + sel, upper: 'anomaly:upper' + sel, source: 'recorded' };
  }

  function onTheSpotQueries(expr) {
    return { score: 'anomaly_score(' + expr + ')', value: expr, lower: 'baseline_lower(' + expr + ')',
      expected: 'baseline_expected(' + expr + ')', upper: 'baseline_upper(' + expr + ')', source: 'computed' };
  }

  // The status line of a rule: the fields docs/RULES.md lists, readably;
  // for a rule of another shape, its plain fields as they are.
  var RULE_FIELDS = [
    ['model', 'model'], ['threshold', 'threshold'], ['interval_seconds', 'every', formatDuration],
    ['training_window_seconds', 'training window', formatDuration], ['health', 'health'], ['series', 'series'],
    ['series_skipped', 'skipped', function (v) { return v ? String(v) : ''; }], ['runs', 'runs'],
    ['last_run', 'last run'], ['last_error', 'last error']];

  function ruleDetails(rule) {
    var known = RULE_FIELDS.filter(function (f) { return rule[f[0]] !== undefined; });
    if (!known.length) {
      return Object.keys(rule).filter(function (k) {
        var v = rule[k];
        return ['name', 'expr', 'query', 'expression'].indexOf(k) < 0 && v !== '' && (typeof v !== 'object' || v === null);
      }).map(function (k) { return k + ': ' + rule[k]; });
    }
    var out = [];
    known.forEach(function (f) {
      var v = rule[f[0]];
      v = v === null ? '' : f[2] ? f[2](v) : String(v);
      if (v !== '') out.push(f[1] + ': ' + v);
    });
    var labels = rule.labels && typeof rule.labels === 'object' ? Object.keys(rule.labels) : [];
    if (labels.length) out.push('labels: ' + seriesName(rule.labels));
    return out;
  }

  // A rule's card: what it is, then its top-scoring series now, each drawn
  // over the window with its baseline band.
  function showRule(box, rule, start, end, top) {
    var expr = ruleExpr(rule);
    var details = ruleDetails(rule);
    var body = el('div', { class: 'rule-body', text: 'scoring\u2026' });
    var card = el('article', { class: 'rule', 'data-rule-state': 'loading' }, [
      el('h3', { text: rule.name || rule.alert || rule.record || expr || '(unnamed rule)' }),
      el('code', { class: 'expr', text: expr }),
      details.length ? el('p', { class: 'details', text: details.join(' \u00b7 ') }) : null,
      body]);
    box.appendChild(card);
    var fail = function (msg) {
      body.textContent = '';
      body.appendChild(el('p', { class: 'error', text: msg }));
      card.setAttribute('data-rule-state', 'error');
      card.setAttribute('data-error', msg);
    };
    var step = Math.max(1, Math.floor((end - start) / 250));
    var range = function (q) {
      return api('/api/v1/query_range', { query: q, start: start.toFixed(3), end: end.toFixed(3), step: step });
    };
    var topOf = function (q) {
      return api('/api/v1/query', { query: 'topk(' + top + ', ' + q.score + ')', time: end.toFixed(3) }).then(function (r) {
        return { q: q, tops: r.data.result || [] };
      });
    };
    var first = rule.name ? topOf(recordedQueries(rule.name)).catch(function () { return { q: null, tops: [] }; })
      : Promise.resolve({ q: null, tops: [] });
    return first.then(function (got) {
      if (got.tops.length) return got;
      if (!expr) throw new ApiError('the rule has no expression', 0);
      return topOf(onTheSpotQueries(expr));
    }).then(function (got) {
      var q = got.q, tops = got.tops;
      card.setAttribute('data-score-source', q.source);
      if (!tops.length) {
        body.textContent = 'no series scored at ' + new Date(end * 1000).toISOString();
        card.setAttribute('data-rule-state', 'empty');
        return null;
      }
      return Promise.all([range(q.value), range(q.lower), range(q.expected), range(q.upper)]).then(function (r) {
        drawTopSeries(body, tops, r[0].data.result, bandColumns(r[1].data.result, r[2].data.result, r[3].data.result));
        card.setAttribute('data-rule-state', 'drawn');
        card.setAttribute('data-series-count', String(tops.length));
      });
    }).catch(function (e) { fail(e.message); });
  }

  // How a scored series is named on the card: a rule's written series carry
  // rule= and keep the source's name in anomaly_source.
  function sourceName(metric) {
    var m = {};
    Object.keys(metric || {}).forEach(function (k) {
      if (k === 'rule' || k === '__name__') return;
      if (k === 'anomaly_source') m.__name__ = metric[k];
      else m[k] = metric[k];
    });
    return seriesName(m);
  }

  function drawTopSeries(body, tops, values, bands) {
    body.textContent = '';
    var byKey = new Map();
    values.forEach(function (s) { byKey.set(seriesKey(s.metric), s); });
    tops.forEach(function (t) {
      var k = seriesKey(t.metric);
      var s = byKey.get(k), b = bands.filter(function (c) { return c.key === k; });
      var graphDiv = el('div', { class: 'graph small' }), legend = el('div', { class: 'legend' });
      body.appendChild(el('section', { class: 'top-series' }, [
        el('h4', {}, [el('span', { class: 'score', text: 'score ' + Number(formatValue(t.value[1])).toPrecision(3) }),
          el('span', { class: 'series', text: ' ' + sourceName(s ? s.metric : t.metric) })]),
        graphDiv, legend]));
      if (libProblem) { graphDiv.appendChild(el('p', { class: 'error', text: libProblem })); return; }
      var cols = [];
      if (s) cols.push({ name: 'value', kind: 'line', key: 'value', values: s.values });
      b.forEach(function (c) {
        cols.push({ name: 'expected', kind: 'band', key: 'band', lower: c.lower, expected: c.expected, upper: c.upper });
      });
      var g = plot(graphDiv, legend, cols, { height: 180 });
      if (g) anomGraphs.push(g);
      else graphDiv.appendChild(el('p', { class: 'placeholder', text: 'no data in the window' }));
    });
  }

  // "html, 12.3 KB" for an archived file without a summary.
  function reportKind(r) {
    var parts = [];
    if (r.format) parts.push(r.format);
    if (typeof r.bytes === 'number') parts.push(r.bytes < 1024 ? r.bytes + ' B' : (r.bytes / 1024).toFixed(1) + ' KB');
    return parts.join(', ');
  }

  function loadReports() {
    var box = loading($('reports'));
    return api('/api/v1/reports').then(function (body) {
      var d = body.data;
      var reports = Array.isArray(d) ? d : (d && Array.isArray(d.reports) ? d.reports : []);
      box.textContent = '';
      box.setAttribute('data-report-count', String(reports.length));
      if (!reports.length) {
        box.appendChild(el('p', { class: 'placeholder', text: 'no reports yet' }));
      } else {
        var tbody = el('tbody');
        reports.forEach(function (r) {
          var when = r.created || r.time || r.generated_at || r.timestamp || r.end || '';
          if (typeof when === 'number') when = new Date(when > 1e11 ? when : when * 1000).toISOString();
          var href = r.url || r.link || (r.id !== undefined ? '/api/v1/reports/' + encodeURIComponent(r.id) : '');
          var link = href ? el('a', { href: href, text: 'open' }) : null;
          tbody.appendChild(el('tr', {}, [
            el('td', { text: String(when) }),
            el('td', { text: r.title || r.name || r.rule || String(r.id !== undefined ? r.id : '') }),
            el('td', { text: r.summary || r.description || reportKind(r) }),
            el('td', {}, [link])]));
        });
        box.appendChild(el('table', { class: 'results' }, [
          el('thead', {}, [el('tr', {}, ['When', 'Report', 'What', ''].map(function (h) { return el('th', { text: h }); }))]),
          tbody]));
      }
      box.setAttribute('data-state', 'loaded');
    }, function (e) {
      if (e.status === 404) unavailable(box, 'Reports', '/api/v1/reports');
      else failed(box, 'cannot list the reports: ' + e.message);
    });
  }

  // ---- routing between the two pages ----

  function route() {
    var page = location.pathname === '/anomalies' ? 'anomalies' : 'graph';
    document.querySelectorAll('.page').forEach(function (p) { p.hidden = p.id !== 'page-' + page; });
    document.querySelectorAll('nav a').forEach(function (a) {
      a.classList.toggle('active', a.getAttribute('data-nav') === page);
    });
    document.body.setAttribute('data-page', page);
    if (page === 'anomalies') return loadAnomalies();
    var s = readState();
    stateToForm(s);
    return execute(s, false);
  }

  function init() {
    initGraphPage();
    $('anom-reload').addEventListener('click', loadAnomalies);
    $('anom-range').addEventListener('change', loadAnomalies);
    document.querySelectorAll('a[data-nav]').forEach(function (a) {
      a.addEventListener('click', function (e) {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        history.pushState(null, '', a.getAttribute('href'));
        route();
      });
    });
    window.addEventListener('popstate', function () { lastRun = {}; route(); });
    checkLibrary().then(function (problem) {
      if (problem) {
        var banner = $('query-error');
        showError(banner, problem);
      }
      return route();
    });
  }

  init();
})();
