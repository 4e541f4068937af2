// Submits a form marked data-auto-submit as soon as the page is read (the RP-initiated
// logout's POST to VNeID). Submitted before the page finishes loading, the navigation replaces
// this page in the history, so Back never lands on a page that would re-send a form.
"use strict";
for (const form of document.querySelectorAll("form[data-auto-submit]")) {
  form.submit();
}
