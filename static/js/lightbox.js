// A lightbox for the photo grid: a <dialog> with previous/next, download and
// "Not me" (with a few seconds to undo it). The photo fills the space between
// fixed controls, so the buttons stay where they are whatever its size.
// Keyboard: arrow keys move, Escape closes (the dialog's own). Touch: swipe
// left or right. Without this script every photo links to its own page.
"use strict";

(function () {
  var dialog = document.getElementById("lightbox");
  if (!dialog || typeof dialog.showModal !== "function") {
    return;
  }
  var tiles = Array.prototype.slice.call(document.querySelectorAll("a.tile"));
  var image = document.getElementById("lightbox-image");
  var stage = dialog.querySelector(".lightbox-stage");
  var caption = document.getElementById("lightbox-caption");
  var download = document.getElementById("lightbox-download");
  var notMe = document.getElementById("lightbox-not-me");
  var status = document.getElementById("lightbox-status");
  var csrf = notMe.querySelector("input[name=csrfmiddlewaretoken]").value;
  var UNDO_MS = 6000;
  var SWIPE_PX = 50;
  var current = 0;
  var undo = null; // {tile, index, timer} while "Undo" is offered

  function apiUrl(tile) {
    return dialog.dataset.api.replace("/0/", "/" + tile.dataset.id + "/");
  }

  function show(index) {
    finishUndo();
    if (!tiles.length) {
      dialog.close();
      return;
    }
    current = (index + tiles.length) % tiles.length;
    var tile = tiles[current];
    image.src = tile.dataset.src;
    image.alt = tile.querySelector("img").alt;
    image.classList.remove("dimmed");
    caption.textContent = tile.dataset.caption + " — photo " + (current + 1) + " of " + tiles.length;
    download.href = tile.dataset.download;
    notMe.action = tile.dataset.notMe;
  }

  // "Not me": hidden at once through the API, with an Undo in place for a
  // few seconds; then on to the next photo.
  function hide() {
    var tile = tiles[current];
    var request = new XMLHttpRequest();
    request.open("POST", apiUrl(tile));
    request.setRequestHeader("X-CSRFToken", csrf);
    request.addEventListener("load", function () {
      if (request.status !== 204) {
        notMe.submit(); // let the page say what is wrong
        return;
      }
      var index = current;
      tiles.splice(index, 1);
      tile.parentNode.hidden = true;
      image.classList.add("dimmed");
      status.hidden = false;
      status.querySelector("button").focus();
      undo = { tile: tile, index: index, timer: window.setTimeout(function () { show(index); }, UNDO_MS) };
    });
    request.addEventListener("error", function () {
      notMe.submit();
    });
    request.send();
  }

  function finishUndo() {
    if (undo) {
      window.clearTimeout(undo.timer);
      undo = null;
    }
    status.hidden = true;
  }

  function restore() {
    if (!undo) {
      return;
    }
    var pending = undo;
    window.clearTimeout(pending.timer);
    var request = new XMLHttpRequest();
    request.open("DELETE", apiUrl(pending.tile));
    request.setRequestHeader("X-CSRFToken", csrf);
    request.addEventListener("load", function () {
      if (request.status === 204) {
        tiles.splice(pending.index, 0, pending.tile);
        pending.tile.parentNode.hidden = false;
        undo = null;
        show(pending.index);
      }
    });
    request.send();
  }

  tiles.forEach(function (tile) {
    tile.addEventListener("click", function (event) {
      if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) {
        return; // a new tab or window: the photo's own page
      }
      event.preventDefault();
      show(tiles.indexOf(tile));
      dialog.showModal();
    });
  });

  notMe.addEventListener("submit", function (event) {
    event.preventDefault();
    hide();
  });

  dialog.addEventListener("click", function (event) {
    var action = event.target.dataset && event.target.dataset.action;
    if (action === "previous") {
      show(undo ? undo.index - 1 : current - 1);
    } else if (action === "next") {
      show(undo ? undo.index : current + 1);
    } else if (action === "undo") {
      restore();
    } else if (action === "close" || event.target === dialog) {
      dialog.close();
    }
  });

  dialog.addEventListener("keydown", function (event) {
    if (event.key === "ArrowLeft") {
      show(undo ? undo.index - 1 : current - 1);
    } else if (event.key === "ArrowRight") {
      show(undo ? undo.index : current + 1);
    }
  });

  // Swipe: a mostly horizontal touch (or pen) movement of SWIPE_PX or more.
  var start = null;
  stage.addEventListener("pointerdown", function (event) {
    if (event.pointerType !== "mouse") {
      start = { x: event.clientX, y: event.clientY };
    }
  });
  stage.addEventListener("pointerup", function (event) {
    if (!start) {
      return;
    }
    var dx = event.clientX - start.x;
    var dy = event.clientY - start.y;
    start = null;
    if (Math.abs(dx) >= SWIPE_PX && Math.abs(dx) > Math.abs(dy)) {
      if (dx < 0) {
        show(undo ? undo.index : current + 1);
      } else {
        show(undo ? undo.index - 1 : current - 1);
      }
    }
  });
  stage.addEventListener("pointercancel", function () {
    start = null;
  });

  dialog.addEventListener("close", function () {
    finishUndo();
    image.removeAttribute("src");
    if (tiles.length) {
      tiles[Math.min(current, tiles.length - 1)].focus();
    }
  });
})();
