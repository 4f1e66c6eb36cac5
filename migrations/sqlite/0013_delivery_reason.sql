ALTER TABLE `deliveries` ADD `reason` text;--> statement-breakpoint
UPDATE `deliveries` SET `reason` = 'not_connected' WHERE `status` = 'skipped' AND `last_error` = 'No Kit account is connected for this community, so nothing was sent to Kit.';--> statement-breakpoint
UPDATE `deliveries` SET `reason` = 'list_lag' WHERE `status` = 'retrying' AND `last_error` LIKE 'Waiting for Kit''s subscriber list: %';--> statement-breakpoint
UPDATE `deliveries` SET `reason` = 'key_rejected' WHERE `status` = 'held' AND `last_error` = 'Waiting: Kit no longer accepts the saved API key. Save a working key under Connection and this delivery resumes.';--> statement-breakpoint
UPDATE `deliveries` SET `reason` = 'key_unreadable' WHERE `status` = 'held' AND `last_error` = 'Waiting: the saved Kit key can no longer be read (the server''s encryption key changed). Paste the key again under Connection and this delivery resumes.';--> statement-breakpoint
UPDATE `deliveries` SET `reason` = 'sync_importing' WHERE `status` = 'held' AND `last_error` = 'Waiting: the sync is still reading its member file.';--> statement-breakpoint
UPDATE `deliveries` SET `reason` = 'sync_paused' WHERE `status` = 'held' AND `last_error` = 'Paused: the initial sync was paused. Resume it under Bring existing members and this delivery continues.';--> statement-breakpoint
UPDATE `deliveries` SET `reason` = 'sync_cancelled' WHERE `status` = 'skipped' AND `last_error` = 'Sync cancelled: the initial sync was cancelled before this member was sent to Kit.';
