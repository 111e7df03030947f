"""Jobs: the contract between the MEAO and its workers, the transactional outbox, and its dispatcher."""
