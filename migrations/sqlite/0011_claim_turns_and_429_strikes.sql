DROP INDEX `deliveries_claim_idx`;--> statement-breakpoint
CREATE INDEX `deliveries_claim_idx` ON `deliveries` (`community_id`,`priority`,`next_attempt_at`,`seq`) WHERE "deliveries"."status" IN ('pending', 'retrying');--> statement-breakpoint
ALTER TABLE `kit_budget_blocks` ADD `strikes` integer DEFAULT 1 NOT NULL;