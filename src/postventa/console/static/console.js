// The console's few behaviours, hand-written (no build step), loaded from this origin (the pages'
// Content-Security-Policy allows no inline script):
// - the message's live count of characters, counted as the send counts them (line ends folded,
//   NFC, trimmed, code points), marked when over the limit;
// - the fixed text of a template reason shown when it is chosen, and the message field disabled
//   then (a template sends no text of the operator's);
// - a form marked data-once is sent once: its buttons are disabled on submit, a second submit is
//   dropped (the server also stores one message for a form posted twice);
// - whether the compose form is idle (nothing written), which the messages' poll sends along so
//   that the reasons are refreshed only while the operator is not writing.
(function () {
  "use strict";

  function characters(text) {
    return Array.from(text.replace(/\r\n/g, "\n").normalize("NFC").trim()).length;
  }

  function updateCount() {
    var field = document.getElementById("compose-message");
    var count = document.getElementById("compose-count");
    var idle = document.getElementById("compose-idle");
    if (!field || !count) return;
    var used = characters(field.value);
    count.textContent = String(used);
    count.classList.toggle("over", used > Number(count.dataset.max));
    if (idle) idle.value = field.value.trim() === "" ? "1" : "0";
  }

  function updateReason() {
    var select = document.getElementById("compose-reason");
    var field = document.getElementById("compose-message");
    if (!select) return;
    var chosen = select.options[select.selectedIndex];
    var template = chosen && chosen.dataset.template === "1";
    document.querySelectorAll(".preview").forEach(function (preview) {
      preview.hidden = preview.dataset.reason !== select.value;
    });
    if (field) field.disabled = template;
  }

  document.addEventListener("input", function (event) {
    if (event.target && event.target.id === "compose-message") updateCount();
  });
  document.addEventListener("change", function (event) {
    if (event.target && event.target.id === "compose-reason") updateReason();
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-once")) return;
    if (form.dataset.sent === "1") {
      event.preventDefault();
      return;
    }
    form.dataset.sent = "1";
    // After this event's default action has taken the form's data: disabled fields are not sent.
    window.setTimeout(function () {
      form.querySelectorAll("button[type=submit]").forEach(function (button) {
        button.disabled = true;
      });
    }, 0);
  });
  document.addEventListener("htmx:oobAfterSwap", updateReason);
  document.addEventListener("DOMContentLoaded", function () {
    updateCount();
    updateReason();
  });
})();
