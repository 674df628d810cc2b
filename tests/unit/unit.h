/* unit.h - every CUnit suite of foldvm registers through one of these. */
#ifndef FOLDVM_UNIT_H
#define FOLDVM_UNIT_H

void unit_add_serial_suite(void);
void unit_add_cli_suite(void);
void unit_add_guest_mem_suite(void);
void unit_add_content_suite(void);
void unit_add_testdev_suite(void);
void unit_add_procstat_suite(void);
void unit_add_index_suite(void);
void unit_add_dedup_suite(void);
void unit_add_qmp_suite(void);
void unit_add_linux_boot_suite(void);
void unit_add_i8042_suite(void);
void unit_add_domxml_suite(void);
void unit_add_libvirt_suite(void);
void unit_add_hooks_suite(void);
void unit_add_spec_suite(void);
void unit_add_result_suite(void);
void unit_add_figures_suite(void);
void unit_add_syscall_rules_suite(void);
void unit_add_virtio_suite(void);
void unit_add_virtio_balloon_suite(void);
void unit_add_virtio_net_suite(void);
void unit_add_acpi_suite(void);
void unit_add_console_suite(void);
void unit_add_metrics_suite(void);

#endif
