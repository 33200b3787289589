// The confirmation every destructive action asks for, in the page's one <dialog>.
//
// showModal() makes the rest of the page inert, so focus stays inside; the safe button
// takes the focus first, so Enter pressed by habit does not confirm; Escape and a click
// on the backdrop decline; focus returns to the control that opened the dialog.

import { replaceChildren } from "./dom.js";

// `danger` marks an action that destroys or stops something: its button is red.
export function confirmAction({ title, body, confirmLabel, cancelLabel = "Go back", danger = false }) {
  const dialog = document.getElementById("confirm-dialog");
  const titleNode = document.getElementById("confirm-title");
  const bodyNode = document.getElementById("confirm-body");
  const ok = document.getElementById("confirm-ok");
  const cancel = document.getElementById("confirm-cancel");
  const opener = document.activeElement;

  titleNode.textContent = title;
  replaceChildren(bodyNode, ...(Array.isArray(body) ? body : [body]));
  ok.textContent = confirmLabel;
  ok.className = `button ${danger ? "danger" : "primary"}`;
  cancel.textContent = cancelLabel;

  return new Promise((resolve) => {
    let answer = false;
    const onOk = () => {
      answer = true;
      dialog.close("confirm");
    };
    const onCancel = () => dialog.close("cancel");
    const onBackdrop = (event) => {
      if (event.target === dialog) dialog.close("cancel");
    };
    const onClose = () => {
      ok.removeEventListener("click", onOk);
      cancel.removeEventListener("click", onCancel);
      dialog.removeEventListener("click", onBackdrop);
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
      resolve(answer);
    };
    ok.addEventListener("click", onOk);
    cancel.addEventListener("click", onCancel);
    dialog.addEventListener("click", onBackdrop);
    dialog.addEventListener("close", onClose, { once: true });
    dialog.showModal();
    cancel.focus();
  });
}

export function dialogOpen() {
  return document.getElementById("confirm-dialog").open;
}

// Declines an open confirmation: the tab is leaving the pages (its token was refused).
export function closeDialog() {
  const dialog = document.getElementById("confirm-dialog");
  if (dialog.open) dialog.close("cancel");
}
