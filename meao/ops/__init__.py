"""What the job queues and the MEPM-V workers are doing, read from the broker and Celery itself."""
