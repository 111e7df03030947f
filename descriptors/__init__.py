"""meao TOSCA type files and example packages (not part of the installed meao package)."""
