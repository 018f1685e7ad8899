// Ready-to-copy ways to connect to a cluster from its endpoint URL (http[s]://host:port).

export interface Connection {
  cli: string;
  jdbc: string;
}

export function connectionStrings(engine: string, endpoint: string): Connection {
  const url = new URL(endpoint);
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  const ssl = url.protocol === "https:" ? "?SSL=true" : "";
  return {
    cli: `${engine} --server ${url.origin}`,
    jdbc: `jdbc:${engine}://${url.hostname}:${port}${ssl}`,
  };
}
