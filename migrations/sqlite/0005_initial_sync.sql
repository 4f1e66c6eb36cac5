CREATE TABLE `syncs` (
	`id` text PRIMARY KEY NOT NULL,
	`community_id` text NOT NULL,
	`status` text NOT NULL,
	`format` text NOT NULL,
	`started_at` integer NOT NULL,
	`total` integer DEFAULT 0 NOT NULL,
	`refused` integer DEFAULT 0 NOT NULL,
	`refused_examples` text DEFAULT '[]' NOT NULL,
	`done` integer,
	`failed` integer,
	`skipped` integer,
	`kit_requests` integer,
	`finished_at` integer,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `syncs_community_idx` ON `syncs` (`community_id`,`started_at`);--> statement-breakpoint
ALTER TABLE `deliveries` ADD `priority` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `deliveries` ADD `sync_id` text;--> statement-breakpoint
CREATE INDEX `deliveries_claim_idx` ON `deliveries` (`priority`,`next_attempt_at`,`seq`,`community_id`) WHERE "deliveries"."status" IN ('pending', 'retrying');--> statement-breakpoint
CREATE INDEX `deliveries_sync_idx` ON `deliveries` (`sync_id`,`status`) WHERE "deliveries"."sync_id" IS NOT NULL;