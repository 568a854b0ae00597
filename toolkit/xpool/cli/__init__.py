"""Click commands: flags -> options -> validate -> run; printing and exit codes only."""
