CREATE TABLE `mapping_versions` (
	`community_id` text NOT NULL,
	`version` integer NOT NULL,
	`document` text NOT NULL,
	`saved_by` text,
	`saved_at` integer NOT NULL,
	`change` text NOT NULL,
	`restored_from` integer,
	PRIMARY KEY(`community_id`, `version`)
);
--> statement-breakpoint
CREATE INDEX `mapping_versions_saved_idx` ON `mapping_versions` (`saved_at`);