"""What operators run and read: status, health, the setup checks, the progress line."""
