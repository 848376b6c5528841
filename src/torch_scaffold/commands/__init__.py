"""One module per subcommand: input/output at the edges around the pure cores."""
