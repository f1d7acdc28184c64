"""Every service that moves exposure or changes the risk state (docs/design.md, Apps and what each owns): one
transaction each, row locks in the one declared order of `risk.locks`, events published after commit."""
