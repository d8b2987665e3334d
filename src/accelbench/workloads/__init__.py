"""The train and infer loops. They see runtimes only through backends.base protocols."""
