DROP INDEX `deliveries_due_idx`;--> statement-breakpoint
CREATE INDEX `deliveries_ready_idx` ON `deliveries` (`next_attempt_at`,`seq`) WHERE "deliveries"."status" IN ('pending', 'retrying');