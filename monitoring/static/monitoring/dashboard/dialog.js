// Every write the page makes goes through this one dialog: it says what will happen, asks for the reason (required
// unless the action says otherwise) and is the confirmation; the API's answer closes it, or shows its error and
// keeps it open. Nothing is sent before the operator confirms.

export class ActionDialog {
  constructor(dialog) {
    this.dialog = dialog;
    this.form = dialog.querySelector("form");
    this.title = dialog.querySelector("[data-role=title]");
    this.text = dialog.querySelector("[data-role=text]");
    this.reason = dialog.querySelector("textarea");
    this.reasonLabel = dialog.querySelector("[data-role=reason-label]");
    this.reasonBlock = dialog.querySelector("[data-role=reason]");
    this.error = dialog.querySelector("[data-role=error]");
    this.confirm = dialog.querySelector("[data-role=confirm]");
    this.action = null;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    dialog.querySelector("[data-role=cancel]").addEventListener("click", () => this.close());
    dialog.addEventListener("close", () => {
      this.action = null;
    });
  }

  // action: {title, text, confirmLabel, danger, reasonRequired, noReason, run: async (reason) => ...}
  open(action) {
    this.action = action;
    this.title.textContent = action.title;
    this.text.textContent = action.text;
    this.reasonLabel.textContent = action.reasonRequired ? "Reason (required)" : "Note (optional)";
    this.reasonBlock.hidden = Boolean(action.noReason);
    this.reason.value = "";
    this.reason.required = Boolean(action.reasonRequired);
    this.error.textContent = "";
    this.confirm.textContent = action.confirmLabel;
    this.confirm.disabled = false;
    this.confirm.classList.toggle("btn-danger", Boolean(action.danger));
    this.dialog.showModal();
    (action.noReason ? this.confirm : this.reason).focus();
  }

  async submit() {
    const action = this.action;
    if (!action) return;
    const reason = this.reason.value.trim();
    if (action.reasonRequired && !reason) {
      this.error.textContent = "A reason is required: nothing was sent.";
      this.reason.focus();
      return;
    }
    this.confirm.disabled = true;
    this.error.textContent = "";
    try {
      await action.run(reason);
      this.close();
    } catch (error) {
      this.error.textContent = error.describe ? error.describe() : String(error);
      this.confirm.disabled = false;
    }
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }
}
