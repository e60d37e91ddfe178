"""Operations: logging, metrics, and talking to systemd."""
