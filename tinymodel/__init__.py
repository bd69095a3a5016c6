"""The tiny Qwen2-architecture test model: built locally (no weights can be downloaded), random or briefly
trained on material the generators and augmenters make, so it sits above both."""
