CREATE TABLE `deliveries` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`id` text NOT NULL,
	`community_id` text NOT NULL,
	`event_id` text NOT NULL,
	`event_type` text NOT NULL,
	`member_id` text NOT NULL,
	`member_email` text NOT NULL,
	`event_time` integer NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`last_error` text,
	`kit_requests` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer NOT NULL,
	`lease_owner` text,
	`lease_until` integer,
	`received_at` integer NOT NULL,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `deliveries_id_idx` ON `deliveries` (`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `deliveries_event_idx` ON `deliveries` (`community_id`,`event_id`);--> statement-breakpoint
CREATE INDEX `deliveries_due_idx` ON `deliveries` (`status`,`next_attempt_at`);--> statement-breakpoint
CREATE INDEX `deliveries_member_idx` ON `deliveries` (`community_id`,`member_id`,`event_time`);--> statement-breakpoint
CREATE INDEX `deliveries_community_seq_idx` ON `deliveries` (`community_id`,`seq`);--> statement-breakpoint
CREATE TABLE `events` (
	`community_id` text NOT NULL,
	`id` text NOT NULL,
	`type` text NOT NULL,
	`member_id` text NOT NULL,
	`member_email` text NOT NULL,
	`event_time` integer NOT NULL,
	`payload` text NOT NULL,
	`received_at` integer NOT NULL,
	PRIMARY KEY(`community_id`, `id`)
);
--> statement-breakpoint
CREATE TABLE `kit_subscribers` (
	`community_id` text NOT NULL,
	`credential_id` text NOT NULL,
	`member_id` text NOT NULL,
	`email` text NOT NULL,
	`subscriber_id` integer NOT NULL,
	`first_name` text,
	`fields` text NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`community_id`, `credential_id`, `member_id`)
);
--> statement-breakpoint
CREATE TABLE `ordering_marks` (
	`community_id` text NOT NULL,
	`scope` text NOT NULL,
	`event_time` integer NOT NULL,
	`event_id` text NOT NULL,
	PRIMARY KEY(`community_id`, `scope`)
);
