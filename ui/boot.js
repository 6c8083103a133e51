// SPDX-License-Identifier: Apache-2.0
//
// boot.js - loaded first: counts uncaught errors, unhandled promise
// rejections, Content-Security-Policy refusals and console.error calls
// into <html data-console-errors>, with the last message in
// data-last-error, so a headless browser's dumped DOM
// (tests/ingest/test_ui.c) shows whether the page ran cleanly.  Nothing
// else; the UI itself is app.js.
(function () {
  'use strict';
  var root = document.documentElement;
  function note(msg) {
    var n = parseInt(root.getAttribute('data-console-errors') || '0', 10) + 1;
    root.setAttribute('data-console-errors', String(n));
    root.setAttribute('data-last-error', String(msg).slice(0, 300));
  }
  window.addEventListener('error', function (e) {
    // Resource load failures (a script or stylesheet) arrive here too, with
    // no message: name the element instead.
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) note('failed to load ' + (t.src || t.href));
    else note(e.message || 'error');
  }, true);
  // Something the server's Content-Security-Policy refused (ingest/ui.c).
  document.addEventListener('securitypolicyviolation', function (e) {
    note('content security policy refused ' + e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
  });
  window.addEventListener('unhandledrejection', function (e) {
    note('unhandled rejection: ' + (e.reason && e.reason.message ? e.reason.message : e.reason));
  });
  var orig = console.error;
  console.error = function () {
    note(Array.prototype.join.call(arguments, ' '));
    return orig.apply(console, arguments);
  };
})();
