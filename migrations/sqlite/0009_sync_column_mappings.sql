CREATE TABLE `sync_column_mappings` (
	`community_id` text PRIMARY KEY NOT NULL,
	`mapping` text NOT NULL,
	`updated_at` integer NOT NULL
);
