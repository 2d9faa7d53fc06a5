// Saving text the API answered (CSV, JSON exports) as a file: a Blob URL clicked, then freed.
export function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  // The click has started the download; the URL may go once the event loop turns.
  window.setTimeout(() => URL.revokeObjectURL(url), 0);
}
