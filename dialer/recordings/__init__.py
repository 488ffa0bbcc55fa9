"""Call recordings: where the files are, who may hear them, and how long they are kept."""
