// The wallboard's live part: call figures pushed by the server (Server-Sent Events) replace the
// ones shown, without reloading. Without JavaScript the page refreshes itself every minute.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var board = document.querySelector("[data-live]");
  if (!board || !window.EventSource) {
    return;
  }
  var source = new EventSource(board.getAttribute("data-live"));
  source.addEventListener("figures", function (message) {
    var figures = JSON.parse(message.data);
    Object.keys(figures).forEach(function (label) {
      board.querySelectorAll(".figure").forEach(function (figure) {
        if (figure.getAttribute("data-figure") === label) {
          figure.querySelector(".value").textContent = figures[label];
        }
      });
    });
    board.setAttribute("data-updated", String(Date.now()));
  });
});
