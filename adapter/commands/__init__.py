"""One module per `kore-voice` subcommand; each offers `register(subparsers)`."""
