// A lightbox for the photo grid: a <dialog> with previous/next, download and
// "Not me". Keyboard: arrow keys move, Escape closes (the dialog's own).
// Without this script every photo links to its own page.
"use strict";

(function () {
  var dialog = document.getElementById("lightbox");
  if (!dialog || typeof dialog.showModal !== "function") {
    return;
  }
  var tiles = Array.prototype.slice.call(document.querySelectorAll("a.tile"));
  var image = document.getElementById("lightbox-image");
  var caption = document.getElementById("lightbox-caption");
  var download = document.getElementById("lightbox-download");
  var notMe = document.getElementById("lightbox-not-me");
  var current = 0;

  function show(index) {
    current = (index + tiles.length) % tiles.length;
    var tile = tiles[current];
    image.src = tile.dataset.src;
    image.alt = tile.querySelector("img").alt;
    caption.textContent = tile.dataset.caption + " — photo " + (current + 1) + " of " + tiles.length;
    download.href = tile.dataset.download;
    notMe.action = tile.dataset.notMe;
  }

  tiles.forEach(function (tile, index) {
    tile.addEventListener("click", function (event) {
      if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) {
        return; // a new tab or window: the photo's own page
      }
      event.preventDefault();
      show(index);
      dialog.showModal();
    });
  });

  dialog.addEventListener("click", function (event) {
    var action = event.target.dataset && event.target.dataset.action;
    if (action === "previous") {
      show(current - 1);
    } else if (action === "next") {
      show(current + 1);
    } else if (action === "close" || event.target === dialog) {
      dialog.close();
    }
  });

  dialog.addEventListener("keydown", function (event) {
    if (event.key === "ArrowLeft") {
      show(current - 1);
    } else if (event.key === "ArrowRight") {
      show(current + 1);
    }
  });

  dialog.addEventListener("close", function () {
    image.removeAttribute("src");
    tiles[current].focus();
  });
})();
