// SPDX-License-Identifier: GPL-3.0-or-later
// This file drives dwv (GPL-3.0) in the browser and is licensed under the GNU GPL v3 or later like it; the rest of
// Emhana runs on our servers and is not distributed. Source and licences: static/vendor/dwv/SOURCE.txt.
// The desk's DICOM viewer: dwv (served from static/vendor/dwv, loaded just before this module) reads the
// images through our access-checked, access-logged record views; nothing is saved on the clinician's machine.
// Tools: scroll through a series, window/level, zoom and pan, measure (ruler); ‹ › step through the images.
const root = document.getElementById("dicom-viewer");
const status = document.getElementById("dicom-status");
const say = (text) => { if (status) status.textContent = text; };

function start() {
  const dwv = globalThis.dwv;
  if (!root || !dwv) { say(root ? root.dataset.msgError : ""); return; }
  const urls = JSON.parse(root.dataset.urls || "[]");
  const app = new dwv.App();
  const options = new dwv.AppOptions({ "*": [new dwv.ViewConfig("layerGroup0")] });
  options.tools = {
    Scroll: new dwv.ToolConfig(),
    WindowLevel: new dwv.ToolConfig(),
    ZoomAndPan: new dwv.ToolConfig(),
    Draw: new dwv.ToolConfig(["Ruler"]),
  };
  app.init(options);
  const buttons = root.querySelectorAll("[data-tool]");
  const choose = (tool) => {
    app.setTool(tool);
    if (tool === "Draw") app.setToolFeatures({ shapeName: "Ruler" });
    buttons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.tool === tool)));
  };
  let loaded = false;
  say(root.dataset.msgLoading);
  app.addEventListener("load", () => {
    loaded = true;
    choose(urls.length > 1 ? "Scroll" : "WindowLevel");
    root.dataset.state = "loaded";
    say(root.dataset.msgLoaded);
  });
  app.addEventListener("error", () => { root.dataset.state = "error"; say(root.dataset.msgError); });
  const failed = () => { if (!loaded) { root.dataset.state = "error"; say(root.dataset.msgError); } };
  window.addEventListener("error", failed);
  window.addEventListener("unhandledrejection", failed);
  app.addEventListener("loadend", () => {
    if (!loaded && root.dataset.state !== "error") { root.dataset.state = "error"; say(root.dataset.msgError); }
  });
  buttons.forEach((b) => b.addEventListener("click", () => { if (loaded) choose(b.dataset.tool); }));
  const step = (delta) => {
    const group = app.getActiveLayerGroup();
    const layer = group && group.getActiveViewLayer();
    if (!layer) return;
    const vc = layer.getViewController();
    const dim = vc.getScrollDimIndex();
    const values = vc.getCurrentIndex().getValues().slice();
    values[dim] += delta;
    const size = vc.getImageSize();
    if (values[dim] < 0 || values[dim] >= size.get(dim)) return;
    vc.setCurrentIndex(new dwv.Index(values));
  };
  root.querySelectorAll("[data-action]").forEach((b) => b.addEventListener("click", () => {
    if (!loaded) return;
    if (b.dataset.action === "reset") app.resetViews();
    else step(b.dataset.action === "next" ? 1 : -1);
  }));
  window.addEventListener("resize", () => app.onResize());
  app.loadURLs(urls);
}

start();
