// The companion's only script, loaded as a module from base.html (no inline script:
// the Content-Security-Policy allows none). Every page works without it; it adds
// GOV.UK Frontend's enhancements, such as the service navigation's menu button on a
// phone and moving focus to the error summary.
import { initAll } from "./vendor/govuk-frontend.min.js";

// GOV.UK Frontend's template sets these classes with an inline script; here the module
// does it. Its CSS hides or shows the enhanced controls by them, and initAll() refuses
// to run without govuk-frontend-supported.
document.body.classList.add("js-enabled", "govuk-frontend-supported");
initAll();
