"""Every service that moves exposure or changes the risk state (DESIGN.md section 3): one transaction each,
row locks in the one fixed order of `risk.selectors`, events published after commit."""
