/* Embedded disclosure table: tells the framing page its height, so the iframe can fit it. */
(function () {
  "use strict";
  if (window.parent === window) return;
  function send() {
    window.parent.postMessage(
      { type: "processor-registry:height", height: document.documentElement.scrollHeight },
      "*"
    );
  }
  window.addEventListener("load", send);
  window.addEventListener("resize", send);
})();
