// Sends a form marked data-submit-on-load as soon as the page has loaded (RP-initiated logout
// by POST); its button stays for browsers without scripts.
document.querySelectorAll("form[data-submit-on-load]").forEach((form) => form.submit());
