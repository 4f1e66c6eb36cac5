CREATE TABLE `kit_tags` (
	`credential_id` text NOT NULL,
	`name` text NOT NULL,
	`tag_id` integer NOT NULL,
	`learnt_at` integer NOT NULL,
	PRIMARY KEY(`credential_id`, `name`)
);
