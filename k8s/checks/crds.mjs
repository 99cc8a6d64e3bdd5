// Validates the custom resources in rendered manifests, which kubernetes-validate has no schema for.
//
//   node crds.mjs MODELS_DIR < objects.json
//
// stdin: a JSON array of the rendered objects whose apiVersion is not a built-in group.
// MODELS_DIR: an npm prefix holding @kubernetes-models/prometheus-operator, whose validators are
// generated from the prometheus-operator API types (field types, required fields, patterns such as
// durations). They do not reject unknown fields; policy.py checks the fields Chorus relies on.
//
// A custom kind with no validator here is an error, so a new CRD cannot slip through unchecked.
// Prints one line per problem and exits 1 if there is any.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modelsDir] = process.argv.slice(2);
if (!modelsDir) {
  console.error("usage: node crds.mjs MODELS_DIR < objects.json");
  process.exit(2);
}

const operator = join(modelsDir, "node_modules", "@kubernetes-models", "prometheus-operator");
const models = {
  "monitoring.coreos.com/v1 ServiceMonitor": join(operator, "monitoring.coreos.com", "v1", "ServiceMonitor.js"),
  "monitoring.coreos.com/v1 PodMonitor": join(operator, "monitoring.coreos.com", "v1", "PodMonitor.js"),
  "monitoring.coreos.com/v1 PrometheusRule": join(operator, "monitoring.coreos.com", "v1", "PrometheusRule.js"),
};

const objects = JSON.parse(readFileSync(0, "utf8"));
let problems = 0;
for (const object of objects) {
  const key = `${object.apiVersion} ${object.kind}`;
  const name = `${object.kind}/${object.metadata?.name}`;
  const path = models[key];
  if (!path) {
    console.log(`${name}: no validator for ${key}`);
    problems++;
    continue;
  }
  const module = await import(pathToFileURL(path).href);
  const Model = module[object.kind];
  try {
    new Model(object).validate();
  } catch (error) {
    console.log(`${name}: ${error.message}`);
    problems++;
  }
}
process.exit(problems === 0 ? 0 : 1);
