CREATE TABLE `platform_events` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`id` text NOT NULL,
	`community_id` text NOT NULL,
	`type` text NOT NULL,
	`member_id` text,
	`once_key` text,
	`body` text NOT NULL,
	`state` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`last_error` text,
	`next_attempt_at` integer NOT NULL,
	`give_up_at` integer NOT NULL,
	`lease_owner` text,
	`lease_until` integer,
	`observed_at` integer NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`sent_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `platform_events_id_idx` ON `platform_events` (`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `platform_events_once_idx` ON `platform_events` (`community_id`,`once_key`);--> statement-breakpoint
CREATE INDEX `platform_events_ready_idx` ON `platform_events` (`next_attempt_at`,`seq`) WHERE "platform_events"."state" = 'pending';--> statement-breakpoint
CREATE INDEX `platform_events_member_idx` ON `platform_events` (`community_id`,`member_id`,`seq`);--> statement-breakpoint
CREATE INDEX `platform_events_community_idx` ON `platform_events` (`community_id`,`seq`);--> statement-breakpoint
CREATE TABLE `platform_failures` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`community_id` text NOT NULL,
	`reason` text NOT NULL,
	`failed_at` integer NOT NULL,
	`notice_id` text
);
--> statement-breakpoint
CREATE INDEX `platform_failures_unreported_idx` ON `platform_failures` (`community_id`,`seq`) WHERE "platform_failures"."notice_id" IS NULL;