CREATE TABLE `kit_erasures` (
	`community_id` text NOT NULL,
	`member_id` text NOT NULL,
	`subscriber_id` integer NOT NULL,
	`erased_at` integer NOT NULL,
	`done_at` integer,
	PRIMARY KEY(`community_id`, `member_id`, `subscriber_id`)
);
--> statement-breakpoint
CREATE INDEX `kit_erasures_community_idx` ON `kit_erasures` (`community_id`,`erased_at`);--> statement-breakpoint
CREATE INDEX `deliveries_deleted_idx` ON `deliveries` (`community_id`,`member_id`,`event_time`) WHERE "deliveries"."event_type" = 'user.deleted';