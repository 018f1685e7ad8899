// Cloud accounts, and the onboarding wizard that connects one: (1) name it and give its AWS
// account ID, (2) create Lakeplane's role in that account (CloudFormation quick-create link or
// the Terraform module call, both carrying this account's external ID), (3) verify the role,
// with every check shown as pass/fail and the sentence to act on; re-verify at any time.

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";

import {
  type CloudAccount,
  createCloudAccount,
  fetchCloudAccount,
  fetchCloudAccounts,
  fetchTerraformOnboarding,
  verifyCloudAccount,
} from "../api/client";
import { CopyButton } from "../app/CopyButton";
import { canAdminister, useRole } from "../app/me";
import { FieldError, fieldErrorId, ProblemView } from "../app/ProblemView";
import { orgPath } from "../app/sections";
import { StatusBadge } from "../app/StatusBadge";
import { When } from "../app/time";

const accountsKey = (org: string) => ["orgs", org, "cloud-accounts"];

export function CloudAccountsPage() {
  const { org = "" } = useParams();
  const canAdmin = canAdminister(useRole(org));
  const accounts = useQuery({ queryKey: accountsKey(org), queryFn: () => fetchCloudAccounts(org) });
  return (
    <>
      <h1>Cloud accounts</h1>
      {canAdmin && (
        <p>
          <Link className="button-like" to={orgPath(org, "cloud-accounts", "new")}>
            Connect a cloud account
          </Link>
        </p>
      )}
      <section className="panel">
        {accounts.isPending && <p className="muted">Loading cloud accounts…</p>}
        {accounts.isError && <ProblemView error={accounts.error} />}
        {accounts.data?.results.length === 0 && (
          <p className="muted">
            No cloud accounts yet. Connect the AWS account your compute planes will run in; Lakeplane gets a role
            there that you control.
          </p>
        )}
        {accounts.data && accounts.data.results.length > 0 && (
          <table className="operations">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">AWS account</th>
                <th scope="col">Status</th>
                <th scope="col">Verified</th>
              </tr>
            </thead>
            <tbody>
              {accounts.data.results.map((a) => (
                <tr key={a.id}>
                  <td>
                    <Link to={orgPath(org, "cloud-accounts", a.id)}>{a.name}</Link>
                  </td>
                  <td>
                    <code>{a.aws_account_id}</code>
                  </td>
                  <td>
                    <StatusBadge status={a.status} />
                  </td>
                  <td>
                    <When iso={a.verified_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}

/** What the AWS account ID field says while typing. */
export function awsAccountIdProblem(value: string): string | null {
  if (value === "") return null;
  if (!/^\d*$/.test(value)) return "Only digits: an AWS account ID is 12 digits.";
  if (value.length !== 12) return `12 digits (${value.length} so far).`;
  return null;
}

export function NewCloudAccountPage() {
  const { org = "" } = useParams();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const [name, setName] = useState("");
  const [accountId, setAccountId] = useState("");
  const create = useMutation({
    mutationFn: () => createCloudAccount(org, { name: name.trim(), aws_account_id: accountId }),
    onSuccess: (account) => {
      queryClient.setQueryData([...accountsKey(org), account.id], account);
      void queryClient.invalidateQueries({ queryKey: accountsKey(org), exact: true });
      navigate(orgPath(org, "cloud-accounts", account.id));
    },
  });
  const idProblem = awsAccountIdProblem(accountId);
  const ready = name.trim() !== "" && accountId.length === 12 && idProblem === null;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (ready) create.mutate();
  };
  return (
    <>
      <h1>Connect a cloud account</h1>
      <ol className="wizard-steps" aria-label="Steps">
        <li aria-current="step">Name the account</li>
        <li>Create Lakeplane's role</li>
        <li>Verify</li>
      </ol>
      <form className="panel form" onSubmit={submit} noValidate aria-label="Cloud account">
        <label>
          Name
          <input
            value={name}
            onChange={(e) => setName(e.target.value)}
            maxLength={100}
            aria-describedby={fieldErrorId("name")}
            placeholder="Production"
          />
        </label>
        <FieldError error={create.error} field="name" />
        <label>
          AWS account ID
          <input
            value={accountId}
            onChange={(e) => setAccountId(e.target.value.trim())}
            inputMode="numeric"
            aria-invalid={idProblem !== null || undefined}
            aria-describedby={idProblem ? "aws-id-hint" : fieldErrorId("aws_account_id")}
            placeholder="123456789012"
          />
        </label>
        {idProblem && (
          <span className="field-error" id="aws-id-hint">
            {idProblem}
          </span>
        )}
        <FieldError error={create.error} field="aws_account_id" />
        {create.isError && <ProblemView error={create.error} shownFields={["name", "aws_account_id"]} />}
        <div>
          <button type="submit" disabled={!ready || create.isPending}>
            Continue
          </button>
        </div>
      </form>
    </>
  );
}

function RoleStep({ org, account }: { org: string; account: CloudAccount }) {
  const terraform = useQuery({
    queryKey: [...accountsKey(org), account.id, "terraform"],
    queryFn: () => fetchTerraformOnboarding(org, account.id),
  });
  return (
    <section className="panel" aria-labelledby="role-step">
      <h2 id="role-step">2. Create Lakeplane's role in AWS account {account.aws_account_id}</h2>
      <p>
        The role trusts Lakeplane only with this external ID:{" "}
        <code data-testid="external-id">{account.external_id}</code>{" "}
        <CopyButton text={account.external_id} label="Copy external ID" />
      </p>
      <h3>With CloudFormation</h3>
      <p>
        <a href={account.onboarding.quick_create_url} target="_blank" rel="noreferrer">
          Open the quick-create stack in the AWS console
        </a>{" "}
        (signed in to account {account.aws_account_id}), create it, and copy the <code>RoleArn</code> output.
      </p>
      <h3>With Terraform</h3>
      {terraform.isPending && <p className="muted">Loading the Terraform snippet…</p>}
      {terraform.isError && <ProblemView error={terraform.error} />}
      {terraform.data && (
        <>
          <pre className="snippet" data-testid="terraform-snippet">
            {terraform.data.module_call}
          </pre>
          <CopyButton text={terraform.data.module_call} label="Copy Terraform snippet" />
        </>
      )}
    </section>
  );
}

function VerifyStep({ org, account, canAdmin }: { org: string; account: CloudAccount; canAdmin: boolean }) {
  const queryClient = useQueryClient();
  const [roleArn, setRoleArn] = useState(account.role_arn);
  const verify = useMutation({
    mutationFn: () => verifyCloudAccount(org, account.id, roleArn.trim()),
    onSuccess: (updated) => {
      queryClient.setQueryData([...accountsKey(org), account.id], updated);
      void queryClient.invalidateQueries({ queryKey: accountsKey(org), exact: true });
    },
  });
  const verifying = account.status === "verifying" || verify.isPending;
  const verifiedOnce = account.checks.length > 0;
  return (
    <section className="panel" aria-labelledby="verify-step">
      <h2 id="verify-step">3. Verify</h2>
      {canAdmin && (
        <form
          className="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            verify.mutate();
          }}
          noValidate
        >
          <label>
            Role ARN
            <input
              className="wide"
              value={roleArn}
              onChange={(e) => setRoleArn(e.target.value)}
              placeholder={`arn:aws:iam::${account.aws_account_id}:role/…`}
              aria-describedby={fieldErrorId("role_arn")}
            />
          </label>
          <button type="submit" disabled={roleArn.trim() === "" || verifying}>
            {verifying ? "Verifying…" : verifiedOnce ? "Re-verify" : "Verify"}
          </button>
          <FieldError error={verify.error} field="role_arn" />
        </form>
      )}
      {verify.isError && <ProblemView error={verify.error} shownFields={["role_arn"]} />}
      {verifying && (
        <p className="muted" aria-live="polite">
          Checking the role…
        </p>
      )}
      {verifiedOnce && !verifying && (
        <ul className="checks" aria-label="Checks">
          {account.checks.map((check) => (
            <li key={check.name} className={check.ok ? "check check--ok" : "check check--failed"}>
              <span className="check__mark" aria-hidden="true">
                {check.ok ? "✓" : "✗"}
              </span>{" "}
              <strong>{check.name}</strong> <span className="visually-hidden">{check.ok ? "passed" : "failed"}</span>
              {check.detail && <span>: {check.detail}</span>}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export function CloudAccountPage() {
  const { org = "", id = "" } = useParams();
  const canAdmin = canAdminister(useRole(org));
  const account = useQuery({
    queryKey: [...accountsKey(org), id],
    queryFn: () => fetchCloudAccount(org, id),
    // Verification runs as an operation: follow it until the account leaves "verifying".
    refetchInterval: (query) => (query.state.data?.status === "verifying" ? 1_000 : false),
  });
  if (account.isPending) return <p className="muted">Loading the cloud account…</p>;
  if (account.isError) {
    return (
      <>
        <h1>Cloud account {id}</h1>
        <ProblemView error={account.error} />
      </>
    );
  }
  const a = account.data;
  return (
    <>
      <h1>
        {a.name} <StatusBadge status={a.status} />
      </h1>
      {a.status === "verified" && (
        <p className="panel ok-banner">
          Lakeplane can use AWS account <code>{a.aws_account_id}</code>. Next:{" "}
          <Link to={orgPath(org, "compute-planes")}>create a compute plane</Link> in it.
        </p>
      )}
      {a.findings.length > 0 && (
        <section className="panel findings" aria-label="Findings">
          <h2>What the last check found</h2>
          <ul>
            {a.findings.map((f) => (
              <li key={`${f.check}:${f.detail}`}>{f.detail}</li>
            ))}
          </ul>
        </section>
      )}
      <RoleStep org={org} account={a} />
      <VerifyStep key={a.id} org={org} account={a} canAdmin={canAdmin} />
    </>
  );
}
