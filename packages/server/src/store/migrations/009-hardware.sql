-- Hardware options (issue 12): the firmware (bios | uefi), Secure Boot (UEFI only) and a TPM 2.0.
ALTER TABLE vms ADD COLUMN firmware TEXT NOT NULL DEFAULT 'bios' CHECK (firmware IN ('bios', 'uefi'));
ALTER TABLE vms ADD COLUMN secure_boot INTEGER NOT NULL DEFAULT 0 CHECK (secure_boot IN (0, 1) AND (secure_boot = 0 OR firmware = 'uefi'));
ALTER TABLE vms ADD COLUMN tpm INTEGER NOT NULL DEFAULT 0 CHECK (tpm IN (0, 1));
