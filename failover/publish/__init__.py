"""The status page outside the service: render it to files, and write those files to each target."""
