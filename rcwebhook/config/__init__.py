"""Configuration: the settings, read from the env file and the environment, validated once."""
