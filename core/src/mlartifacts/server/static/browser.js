// The artifact browser. Plain script, no build step, no external origin.
// Every artifact name and byte is untrusted: it is only ever set as text (textContent,
// attributes through setAttribute/properties), never parsed as markup.
"use strict";

(function () {
  // Absolute, from the origin: a page opened as http://user:pass@host/ has credentials in
  // its own URL, and fetch() refuses URLs that carry them (the browser sends them anyway).
  const API = location.origin + location.pathname.replace(/[^/]*$/, "") + "api/2.0/mlflow-artifacts";
  const PAGE_SIZE = 200;
  const TEXT_CAP = 256 * 1024; // bytes of a text preview
  const TABLE_CAP = 1024 * 1024; // bytes read for a CSV/TSV preview
  const TABLE_ROWS = 100;
  const IMAGES = new Set(["png", "jpg", "jpeg", "gif", "webp"]);
  const TEXTS = new Set([
    "txt", "log", "json", "jsonl", "yaml", "yml", "md", "py", "toml", "cfg", "ini", "sh", "rst",
    "xml", "js", "r", "sql", "err", "out", "conf", "properties",
  ]);
  const TEXT_NAMES = new Set(["mlmodel", "mlproject", "requirements.txt", "dockerfile", "license", "readme"]);
  // Active content: shown as text, never rendered.
  const ACTIVE = new Set(["html", "htm", "xhtml", "svg", "svgz", "xml"]);
  const TABLES = { csv: ",", tsv: "\t" };

  const $ = (id) => document.getElementById(id);
  const state = { sort: "name", descending: false, rows: [] };

  function el(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    return node;
  }

  function encodePath(path) {
    return path.split("/").map(encodeURIComponent).join("/");
  }

  function decodePath(encoded) {
    try {
      return encoded.split("/").map(decodeURIComponent).filter((s) => s !== "").join("/");
    } catch (e) {
      return null;
    }
  }

  function browseLink(path, page) {
    return "#/browse/" + encodePath(path) + (page ? "?page=" + encodeURIComponent(page) : "");
  }
  const viewLink = (path) => "#/view/" + encodePath(path);
  const fileUrl = (path) => API + "/artifacts/" + encodePath(path);
  const archiveUrl = (path, format) => API + "/archive/" + encodePath(path) + "?format=" + format;
  const baseName = (path) => path.split("/").pop();
  const parentOf = (path) => path.split("/").slice(0, -1).join("/");

  function extension(name) {
    const lower = name.toLowerCase();
    return lower.includes(".") ? lower.split(".").pop() : "";
  }

  function humanSize(bytes) {
    if (bytes === undefined || bytes === null) return "";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return unit === 0 ? bytes + " B" : value.toFixed(1) + " " + units[unit];
  }

  function humanTime(seconds) {
    if (seconds === undefined || seconds === null) return "";
    return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }

  function setStatus(text, isError) {
    const status = $("status");
    status.textContent = text || "";
    status.className = isError ? "error" : "";
  }

  async function failure(response) {
    // The server's message names artifact paths only, never where it stores them.
    let message = response.status + " " + response.statusText;
    try {
      const body = await response.json();
      if (body && body.message) message = body.message;
    } catch (e) {
      /* not JSON */
    }
    return new Error(message);
  }

  function crumbs(path, isFile) {
    const nav = $("crumbs");
    nav.replaceChildren();
    nav.append(el("a", "artifacts", { href: browseLink("") }));
    const parts = path ? path.split("/") : [];
    parts.forEach((part, i) => {
      nav.append(el("span", "/", { class: "sep", "aria-hidden": "true" }));
      const sub = parts.slice(0, i + 1).join("/");
      const last = i === parts.length - 1;
      const link = el("a", part, { href: last && isFile ? viewLink(sub) : browseLink(sub) });
      if (last) link.setAttribute("aria-current", "page");
      nav.append(link);
    });
  }

  function actionLink(text, href, download) {
    const link = el("a", text, { href: href });
    if (download) link.setAttribute("download", "");
    return link;
  }

  function deleteButton(path, isDir, after) {
    const button = el("button", "Delete", { type: "button", class: "danger" });
    button.setAttribute("aria-label", "Delete " + path);
    button.addEventListener("click", async () => {
      const what = isDir ? "the directory " + path + " and everything in it" : path;
      if (!window.confirm("Delete " + what + "? This cannot be undone.")) return;
      try {
        const response = await fetch(fileUrl(path), { method: "DELETE", credentials: "same-origin" });
        if (!response.ok) throw await failure(response);
        setStatus("Deleted " + path);
        after();
      } catch (error) {
        setStatus("Could not delete " + path + ": " + error.message, true);
      }
    });
    return button;
  }

  async function upload(directory, files) {
    // One PUT per file, through the artifacts API (same origin, so the Origin check passes).
    let done = 0;
    for (const file of files) {
      const target = directory ? directory + "/" + file.name : file.name;
      setStatus("Uploading " + file.name + " (" + (done + 1) + " of " + files.length + ")…");
      const response = await fetch(fileUrl(target), { method: "PUT", body: file, credentials: "same-origin" });
      if (!response.ok) {
        setStatus("Could not upload " + file.name + ": " + (await failure(response)).message, true);
        return;
      }
      done += 1;
    }
    await showDirectory(directory, null);
    setStatus("Uploaded " + done + (done === 1 ? " file." : " files."));
  }

  function uploadControl(directory) {
    const label = el("label", "Upload files", { class: "upload" });
    const input = el("input", null, { type: "file", multiple: "", id: "upload-input" });
    input.addEventListener("change", () => {
      if (input.files.length) upload(directory, Array.from(input.files));
    });
    label.append(input);
    return label;
  }

  // Files dropped anywhere on a directory's page are uploaded into it.
  document.addEventListener("dragover", (event) => {
    if (state.view === "dir") event.preventDefault();
  });
  document.addEventListener("drop", (event) => {
    if (state.view !== "dir") return;
    event.preventDefault();
    const files = Array.from(event.dataTransfer.files || []);
    if (files.length) upload(state.dir, files);
  });

  function sortRows(rows) {
    const key = state.sort;
    const sign = state.descending ? -1 : 1;
    return rows.slice().sort((a, b) => {
      if (a.is_dir !== b.is_dir) return a.is_dir ? -1 : 1; // directories first, as file managers do
      let left = a[key];
      let right = b[key];
      if (key === "name") {
        left = a.path;
        right = b.path;
      }
      if (left === right) return a.path < b.path ? -1 : 1;
      if (left === undefined) return 1;
      if (right === undefined) return -1;
      return (left < right ? -1 : 1) * sign;
    });
  }

  function headerCell(label, key, extraClass) {
    const th = el("th", null, { scope: "col" });
    if (extraClass) th.className = extraClass;
    const button = el("button", label, { type: "button" });
    if (state.sort === key) {
      th.setAttribute("aria-sort", state.descending ? "descending" : "ascending");
      button.textContent = label + (state.descending ? " ▼" : " ▲");
    }
    button.addEventListener("click", () => {
      state.descending = state.sort === key ? !state.descending : false;
      state.sort = key;
      renderTable();
    });
    th.append(button);
    return th;
  }

  function renderTable() {
    const content = $("content");
    content.replaceChildren();
    if (state.rows.length === 0) {
      content.append(el("p", "This directory is empty.", { class: "note" }));
      return;
    }
    const table = el("table", null, { id: "listing" });
    const digests = state.rows.some((row) => row.digest); // only where the destination keeps them
    const head = el("tr");
    head.append(headerCell("Name", "name"), headerCell("Size", "file_size", "num"));
    head.append(headerCell("Modified", "modified", "wide"));
    if (digests) head.append(el("th", "Digest", { scope: "col", class: "wide" }));
    head.append(el("th", "Actions", { scope: "col" }));
    const thead = el("thead");
    thead.append(head);
    table.append(thead);
    const body = el("tbody");
    for (const row of sortRows(state.rows)) {
      const full = state.dir ? state.dir + "/" + row.path : row.path;
      const tr = el("tr");
      const name = el("td", null, { class: "name" });
      const link = el("a", row.path, { href: row.is_dir ? browseLink(full) : viewLink(full) });
      if (row.is_dir) link.className = "dir";
      name.append(link);
      const size = el("td", humanSize(row.file_size), { class: "num" });
      if (!row.is_dir) size.title = row.file_size + " bytes";
      const actions = el("td");
      if (!row.is_dir) actions.append(actionLink("Download", fileUrl(full), true), " ");
      actions.append(deleteButton(full, row.is_dir, route));
      tr.append(name, size, el("td", humanTime(row.modified), { class: "wide" }));
      if (digests) tr.append(el("td", row.digest || "", { class: "digest wide" }));
      tr.append(actions);
      body.append(tr);
    }
    table.append(body);
    const wrap = el("div", null, { class: "table-wrap" });
    wrap.append(table);
    content.append(wrap);
  }

  async function showDirectory(path, page) {
    state.view = "dir";
    crumbs(path, false);
    $("title").textContent = path ? baseName(path) + "/" : "All artifacts";
    document.title = (path || "artifacts") + " · mlartifacts";
    const actions = $("actions");
    actions.replaceChildren(
      actionLink("Download as .zip", archiveUrl(path, "zip"), true),
      actionLink("Download as .tar", archiveUrl(path, "tar"), true),
      uploadControl(path)
    );
    $("content").replaceChildren();
    setStatus("Loading…");
    const query = new URLSearchParams({ path: path, max_results: String(PAGE_SIZE), details: "true" });
    if (page) query.set("page_token", page);
    const response = await fetch(API + "/artifacts?" + query, { credentials: "same-origin" });
    if (!response.ok) throw await failure(response);
    const body = await response.json();
    state.dir = path;
    state.rows = body.files || [];
    setStatus("");
    renderTable();
    performance.mark("listing-rendered"); // for benchmarks/browser.py: the browser's own clock
    const pager = el("nav", null, { class: "pager", "aria-label": "Pages" });
    if (page) pager.append(el("a", "First page", { href: browseLink(path) }));
    if (body.next_page_token) {
      pager.append(el("a", "Next page", { href: browseLink(path, body.next_page_token), id: "next-page" }));
    }
    if (pager.childElementCount) $("content").append(pager);
    if (state.rows.length === 0 && !page) {
      actions.replaceChildren(uploadControl(path)); // nothing to download
    }
    if (path && state.rows.length === 0 && !page) {
      setStatus("Nothing is stored under " + path + ".");
    }
  }

  async function readStart(path, cap) {
    const response = await fetch(fileUrl(path), {
      credentials: "same-origin",
      headers: { Range: "bytes=0-" + (cap - 1) },
    });
    if (!response.ok) throw await failure(response);
    const range = response.headers.get("Content-Range");
    const total = range ? Number(range.split("/").pop()) : null;
    const bytes = new Uint8Array(await response.arrayBuffer());
    return { bytes: bytes, truncated: total !== null && total > bytes.length, total: total };
  }

  function parseDelimited(text, separator, maxRows) {
    const rows = [];
    let row = [];
    let field = "";
    let quoted = false;
    for (let i = 0; i < text.length && rows.length < maxRows; i++) {
      const c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') {
          field += '"';
          i++;
        } else if (c === '"') quoted = false;
        else field += c;
      } else if (c === '"' && field === "") quoted = true;
      else if (c === separator) {
        row.push(field);
        field = "";
      } else if (c === "\n" || c === "\r") {
        if (c === "\r" && text[i + 1] === "\n") i++;
        row.push(field);
        rows.push(row);
        row = [];
        field = "";
      } else field += c;
    }
    if ((field !== "" || row.length) && rows.length < maxRows) {
      row.push(field);
      rows.push(row);
    }
    return rows;
  }

  async function previewText(path, note) {
    const start = await readStart(path, TEXT_CAP);
    const text = new TextDecoder("utf-8", { fatal: false }).decode(start.bytes);
    const content = $("content");
    if (note) content.append(el("p", note, { class: "note" }));
    if (start.truncated) {
      content.append(el("p", "Showing the first " + humanSize(TEXT_CAP) + " of " + humanSize(start.total) + ".", { class: "note" }));
    }
    content.append(el("pre", text, { class: "text", id: "text-preview", tabindex: "0" }));
  }

  async function previewTable(path, separator) {
    const start = await readStart(path, TABLE_CAP);
    const text = new TextDecoder("utf-8", { fatal: false }).decode(start.bytes);
    let rows = parseDelimited(text, separator, TABLE_ROWS + 1);
    if (start.truncated && rows.length <= TABLE_ROWS) rows = rows.slice(0, -1); // the last may be cut
    const content = $("content");
    content.append(el("p", "The first " + Math.max(rows.length - 1, 0) + " rows.", { class: "note" }));
    const table = el("table", null, { id: "table-preview" });
    rows.slice(0, TABLE_ROWS + 1).forEach((cells, i) => {
      const tr = el("tr");
      for (const cell of cells) tr.append(el(i === 0 ? "th" : "td", cell));
      table.append(tr);
    });
    const wrap = el("div", null, { class: "table-wrap" });
    wrap.append(table);
    content.append(wrap);
  }

  function simpleTable(id, header, rows) {
    const table = el("table", null, { id: id });
    const head = el("tr");
    for (const name of header) head.append(el("th", name, { scope: "col" }));
    const thead = el("thead");
    thead.append(head);
    const body = el("tbody");
    for (const cells of rows) {
      const tr = el("tr");
      for (const cell of cells) tr.append(el("td", cell === null ? "null" : cell));
      body.append(tr);
    }
    table.append(thead, body);
    const wrap = el("div", null, { class: "table-wrap" });
    wrap.append(table);
    return wrap;
  }

  async function previewParquet(path) {
    // Read on the server, with pyarrow when it is installed there.
    const response = await fetch(API + "/preview/" + encodePath(path), { credentials: "same-origin" });
    if (!response.ok) throw await failure(response);
    const body = await response.json();
    const content = $("content");
    content.append(el("h2", "Schema"));
    content.append(simpleTable("parquet-schema", ["Column", "Type"], body.schema.map((f) => [f.name, f.type])));
    content.append(el("h2", "First rows"));
    content.append(el("p", body.rows.length + " of " + body.num_rows + " rows.", { class: "note" }));
    content.append(simpleTable("parquet-rows", body.schema.map((f) => f.name), body.rows));
  }

  async function showFile(path) {
    state.view = "file";
    crumbs(path, true);
    const name = baseName(path);
    $("title").textContent = name;
    document.title = path + " · mlartifacts";
    $("actions").replaceChildren(
      actionLink("Download", fileUrl(path), true),
      deleteButton(path, false, () => {
        location.hash = browseLink(parentOf(path));
      })
    );
    const content = $("content");
    content.replaceChildren();
    setStatus("Loading…");
    const ext = extension(name);
    if (IMAGES.has(ext)) {
      const image = el("img", null, { class: "preview", id: "image-preview" });
      image.alt = name;
      image.addEventListener("load", () => setStatus(image.naturalWidth + " × " + image.naturalHeight + " pixels"));
      image.addEventListener("error", () => setStatus("The image could not be shown.", true));
      image.src = fileUrl(path);
      content.append(image);
      return;
    }
    if (ACTIVE.has(ext)) {
      await previewText(path, "Shown as text: active content (HTML, SVG) is never rendered here.");
    } else if (ext === "parquet" || ext === "pq") {
      await previewParquet(path);
    } else if (ext in TABLES) {
      await previewTable(path, TABLES[ext]);
    } else if (TEXTS.has(ext) || TEXT_NAMES.has(name.toLowerCase())) {
      await previewText(path);
    } else {
      content.append(el("p", "No preview for this type of file: download it to open it.", { class: "note" }));
    }
    setStatus("");
  }

  async function route() {
    const hash = location.hash.replace(/^#/, "") || "/browse/";
    const [where, queryString] = hash.split("?", 2);
    const query = new URLSearchParams(queryString || "");
    const match = /^\/(browse|view)\/?(.*)$/.exec(where);
    const path = match ? decodePath(match[2]) : null;
    try {
      if (!match || path === null) throw new Error("No such page: " + hash);
      if (match[1] === "view" && path) await showFile(path);
      else await showDirectory(path, query.get("page"));
    } catch (error) {
      setStatus(error.message, true);
    }
    $("title").focus({ preventScroll: true });
  }

  window.addEventListener("hashchange", route);
  document.addEventListener("DOMContentLoaded", route);
})();
