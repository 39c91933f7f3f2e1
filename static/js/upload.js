// Selfie upload with progress: posts the form's file to the JSON API with
// `Prefer: respond-async`, shows "Analysing your selfie…" while the encoder
// works, polling the status URL, and explains every refusal. Without this
// script the form posts as usual and the status page refreshes itself.
"use strict";

(function () {
  var form = document.getElementById("upload");
  if (!form || !window.FormData || !window.XMLHttpRequest) {
    return;
  }
  var input = form.querySelector("input[type=file]");
  var progress = document.getElementById("upload-progress");
  var message = document.getElementById("upload-message");
  var button = form.querySelector("button[type=submit]");
  var maxBytes = Number(form.dataset.maxBytes);
  var maxMb = form.dataset.maxMb;
  var pollMs = 1000;

  // The server's messages say what is wrong and what to do; a size refusal
  // gets a hint on how to make a photo smaller.
  var tips = {
    too_large: "Tip: a selfie from your phone's front camera, or a screenshot of the photo, is small enough."
  };

  function show(text, isError, link) {
    message.textContent = text;
    message.className = isError ? "error" : "success";
    if (isError) {
      message.setAttribute("role", "alert");
    } else {
      message.removeAttribute("role");
    }
    if (link) {
      var anchor = document.createElement("a");
      anchor.href = link.href;
      anchor.textContent = link.text;
      message.appendChild(document.createTextNode(" "));
      message.appendChild(anchor);
    }
    message.hidden = false;
  }

  function refuse(code, serverMessage) {
    var text = serverMessage || "This selfie cannot be used.";
    if (tips[code]) {
      text += " " + tips[code];
    }
    var link = code === "consent" ? { href: form.dataset.consentUrl, text: "Go to the privacy page." } : null;
    show(text, true, link);
  }

  function done() {
    progress.hidden = true;
    button.disabled = false;
  }

  function statusPage(id) {
    // The page without JavaScript: shows the outcome as after a form post.
    return form.dataset.statusPage.replace(/0\/$/, id + "/");
  }

  // The JSON body of an answer, or null (an HTML error page from a proxy, say).
  function answer(request) {
    try {
      return JSON.parse(request.responseText);
    } catch (ignored) {
      return null;
    }
  }

  // Asks the status URL until the analysis has ended, then shows its outcome.
  function poll(url) {
    var request = new XMLHttpRequest();
    request.open("GET", url);
    request.addEventListener("load", function () {
      var body = answer(request);
      if (request.status !== 200 || !body) {
        done();
        show("We lost track of your selfie (HTTP " + request.status + "). Reload the page to see whether it was added.", true);
      } else if (body.state === "refused") {
        done();
        refuse(body.code, body.error);
      } else if (body.state === "done") {
        show("Selfie added. Taking you to your photos…", false);
        window.location.assign(statusPage(body.id));
      } else {
        window.setTimeout(function () { poll(url); }, pollMs);
      }
    });
    request.addEventListener("error", function () {
      // A dropped connection: the selfie is still being analysed, so ask again.
      window.setTimeout(function () { poll(url); }, 3 * pollMs);
    });
    request.send();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var file = input.files && input.files[0];
    if (!file) {
      refuse("not_image", "Choose a photo to upload.");
      input.focus();
      return;
    }
    if (file.size > maxBytes) {
      refuse("too_large", "This file is " + (file.size / 1048576).toFixed(1) + " MB; the limit is " + maxMb + " MB.");
      return;
    }
    var data = new FormData();
    data.append("image", file);
    var request = new XMLHttpRequest();
    request.open("POST", form.dataset.api);
    request.setRequestHeader("X-CSRFToken", form.querySelector("input[name=csrfmiddlewaretoken]").value);
    request.setRequestHeader("Prefer", "respond-async");
    request.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) {
        progress.value = Math.round((100 * e.loaded) / e.total);
        progress.textContent = progress.value + "%";
      }
    });
    request.upload.addEventListener("load", function () {
      progress.removeAttribute("value"); // indeterminate while the face is searched for
      show("Uploaded. Analysing your selfie…", false);
    });
    request.addEventListener("load", function () {
      var body = answer(request);
      if (request.status === 202 && body && body.id) {
        show("Analysing your selfie…", false);
        poll(request.getResponseHeader("Location"));
        return;
      }
      done();
      if (request.status === 201 && body && body.warnings && body.warnings.length) {
        // Stay on the selfie page, which shows why this selfie may find few photos.
        show("Selfie added, with a warning: " + body.warnings.join(" "), true);
        window.location.assign(window.location.pathname);
      } else if (request.status === 201) {
        show("Selfie added. Taking you to your photos…", false);
        window.location.assign(form.dataset.next);
      } else if (body && body.code) {
        refuse(body.code, body.error);
        if (request.getResponseHeader("Retry-After")) {
          message.appendChild(document.createTextNode(" (You can try again in " + request.getResponseHeader("Retry-After") + " s.)"));
        }
      } else if (request.status === 413) {
        refuse("too_large", "This file is too large.");
      } else if (request.status === 403) {
        show("Your session has ended. Reload the page and log in again.", true);
      } else {
        show("Something went wrong on our side (HTTP " + request.status + "). Please try again.", true);
      }
    });
    request.addEventListener("error", function () {
      done();
      show("The upload did not reach Throwback. Check your connection and try again.", true);
    });
    progress.value = 0;
    progress.hidden = false;
    button.disabled = true;
    show("Uploading…", false);
    request.send(data);
  });
})();
