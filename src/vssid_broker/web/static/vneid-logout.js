// Continues the logout at VNeID: posts the form (its id_token_hint never goes in a URL).
// A file, not an inline script: the Content-Security-Policy allows scripts from 'self' only.
document.getElementById("vneid-logout").submit();
