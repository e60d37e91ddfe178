"""Configuration: the table of keys, the env file and the environment read into one immutable Settings,
validated once, described by --check-config; secrets and their redaction; TLS contexts and CA checks."""
