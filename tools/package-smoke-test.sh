#!/usr/bin/env bash
# NuGet consumer check (issue 4, item 4): packs DiffusionClassifier.Core, checks what the package carries, then builds a
# fresh console app in a temporary folder that references the package from a local feed plus the CPU backend
# (libtorch-cpu-linux-x64) and classifies a known embedded MNIST digit with the embedded default model.
#
#   tools/package-smoke-test.sh            # about 1-2 minutes once the backend is in the NuGet cache
#
# The package gets a unique prerelease version, so a copy left in the NuGet cache by an earlier run can never stand in
# for the one just packed; that version is removed from the cache again at the end. Exit code 0 means every check passed.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/dc-package-smoke.XXXXXX")"
version="0.0.0-smoke.$(date +%Y%m%d%H%M%S).$$"
packages="${NUGET_PACKAGES:-$HOME/.nuget/packages}"
cleanup() {
  rm -rf "$work" "$packages/diffusionclassifier.core/$version" "$packages/diffusionclassifier.cli/$version" \
    "$packages/diffusionclassifier.cli.linux-x64/$version"
  rmdir "$packages/diffusionclassifier.core" "$packages/diffusionclassifier.cli" "$packages/diffusionclassifier.cli.linux-x64" 2>/dev/null || true
}
trap cleanup EXIT
fail() { echo "package-smoke-test: FAIL: $*" >&2; exit 1; }
step() { echo "package-smoke-test: $*"; }

step "packing DiffusionClassifier.Core $version"
dotnet pack "$repo/DiffusionClassifier.Core" -c Release -o "$work/feed" -p:Version="$version" --nologo -v quiet >"$work/pack.log" 2>&1 \
  || { cat "$work/pack.log" >&2; fail "dotnet pack failed"; }
nupkg="$work/feed/DiffusionClassifier.Core.$version.nupkg"
snupkg="$work/feed/DiffusionClassifier.Core.$version.snupkg"
[[ -f "$nupkg" ]] || fail "no $nupkg"
[[ -f "$snupkg" ]] || fail "no symbol package $snupkg"

step "checking the package contents"
listing="$(unzip -Z1 "$nupkg")"
for entry in README.md LICENSE NOTICE.md lib/net10.0/DiffusionClassifier.Core.dll lib/net10.0/DiffusionClassifier.Core.xml \
             buildTransitive/DiffusionClassifier.Core.targets build/DiffusionClassifier.Core.targets DiffusionClassifier.Core.nuspec; do
  grep -qx "$entry" <<<"$listing" || fail "the package lacks $entry"
done
grep -qx 'lib/net10.0/DiffusionClassifier.Core.pdb' <<<"$(unzip -Z1 "$snupkg")" || fail "the symbol package lacks the .pdb"
nuspec="$(unzip -p "$nupkg" DiffusionClassifier.Core.nuspec)"
grep -q '<license type="expression">MIT</license>' <<<"$nuspec" || fail "the nuspec has no MIT licence expression"
grep -q '<readme>README.md</readme>' <<<"$nuspec" || fail "the nuspec does not point at README.md"
grep -q 'libtorch-cpu-linux-x64' <<<"$nuspec" || fail "the description does not name the backend package an app must add"
grep -q '<dependency id="TorchSharp"' <<<"$nuspec" || fail "the package does not depend on TorchSharp"
# The embedded model and digits travel inside the assembly.
unzip -p "$nupkg" lib/net10.0/DiffusionClassifier.Core.dll >"$work/core.dll"
for resource in mnist-default.safetensors mnist-test-digits-images.idx3.gz mnist-test-digits-labels.idx1.gz; do
  grep -qa "DiffusionClassifier.Pretrained.$resource" "$work/core.dll" || fail "the assembly lacks the resource $resource"
done

step "building a fresh console app against the local feed"
mkdir -p "$work/app"
cat >"$work/app/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$work/feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
  <packageSourceMapping>
    <packageSource key="local"><package pattern="DiffusionClassifier.*" /></packageSource>
    <packageSource key="nuget.org"><package pattern="*" /></packageSource>
  </packageSourceMapping>
</configuration>
XML
cat >"$work/app/SmokeApp.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <ImplicitUsings>enable</ImplicitUsings>
    <Nullable>enable</Nullable>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="DiffusionClassifier.Core" Version="$version" />
    <PackageReference Include="libtorch-cpu-linux-x64" Version="2.10.0" />
  </ItemGroup>
</Project>
XML
cat >"$work/app/Program.cs" <<'CS'
using DiffusionClassifier.Classification;
using DiffusionClassifier.Pretrained;

// The host-app quick start: the embedded default model, one call.
using var classifier = PretrainedModels.CreateMnistClassifier();
using var digits = PretrainedModels.LoadMnistTestDigits();
// Items 0, 1 and 2 of the MNIST test set are a 7, a 2 and a 1.
long[] expected = [7, 2, 1];
int failures = 0;
for (int i = 0; i < expected.Length; i++)
{
    using var image = digits.Images[i];                 // [1, 28, 28], values in [0, 1]
    ClassPrediction prediction = classifier.Predict(image, 20);
    Console.WriteLine($"digit {i}: label {prediction.Label} (expected {expected[i]}), p = {prediction.Confidence:F3}, {prediction.NetworkEvaluations} evaluations");
    if (prediction.Label != expected[i]) failures++;
}
return failures == 0 ? 0 : 1;
CS
# Twice: as a portable app (native libraries under runtimes/) and for linux-x64 (native libraries next to the app).
(cd "$work/app" && dotnet build -c Release --nologo -v minimal >"$work/build.log" 2>&1) || { cat "$work/build.log" >&2; fail "the consumer app does not build"; }
(cd "$work/app" && dotnet build -c Release -r linux-x64 --self-contained false --nologo -v minimal >"$work/build-rid.log" 2>&1) \
  || { cat "$work/build-rid.log" >&2; fail "the consumer app does not build for linux-x64"; }
grep -q "DiffusionClassifier.Core/$version" "$work/app/obj/project.assets.json" || fail "the app did not restore the freshly packed $version"
# On hosts whose libstdc++ lacks GLIBCXX_3.4.32 the package's buildTransitive targets must have patched the app's copy.
host_has_glibcxx=no
for lib in /usr/lib/x86_64-linux-gnu/libstdc++.so.6 /lib/x86_64-linux-gnu/libstdc++.so.6 /usr/lib64/libstdc++.so.6; do
  [[ -f "$lib" ]] && grep -qa 'GLIBCXX_3.4.32' "$lib" && host_has_glibcxx=yes
done
if [[ "$host_has_glibcxx" == no ]]; then
  for log in build.log build-rid.log; do
    grep -q 'marked GLIBCXX_3.4.32 weak' "$work/$log" || fail "the buildTransitive libstdc++ fix did not run for the consumer ($log: $(cat "$work/$log"))"
  done
  step "the buildTransitive targets patched the app's libLibTorchSharp.so in both builds (host libstdc++ lacks GLIBCXX_3.4.32)"
fi

for dll in "$work/app/bin/Release/net10.0/SmokeApp.dll" "$work/app/bin/Release/net10.0/linux-x64/SmokeApp.dll"; do
  step "running ${dll#$work/app/}"
  dotnet "$dll" || fail "the app did not classify the known digits correctly"
done

# The command-line tool (issue 4, item 2): a .NET 10 RID-specific tool package per platform (linux-x64 and win-x64),
# each carrying only its own libtorch. Packed here for linux-x64, installed into a temporary tool path, and run.
step "packing the diffusion-classifier tool for linux-x64"
dotnet pack "$repo/DiffusionClassifier.Cli" -c Release -o "$work/tools" -p:Version="$version" -p:RuntimeIdentifiers=linux-x64 --nologo -v quiet \
  >"$work/pack-tool.log" 2>&1 || { cat "$work/pack-tool.log" >&2; fail "packing the tool failed"; }
[[ -f "$work/tools/DiffusionClassifier.Cli.$version.nupkg" ]] || fail "no top-level tool package"
tool_rid="$work/tools/DiffusionClassifier.Cli.linux-x64.$version.nupkg"
[[ -f "$tool_rid" ]] || fail "no linux-x64 tool package"
tool_listing="$(unzip -Z1 "$tool_rid")"   # not piped into grep -q: with pipefail, unzip's SIGPIPE would fail the check
grep -qx 'tools/net10.0/linux-x64/libtorch_cpu.so' <<<"$tool_listing" || fail "the linux-x64 tool package lacks libtorch"
grep -q 'runtimes/win' <<<"$tool_listing" && fail "the linux-x64 tool package carries other platforms' native libraries"
step "installing and running the tool ($(( $(stat -c %s "$tool_rid") >> 20 )) MB package)"
dotnet tool install DiffusionClassifier.Cli --version "$version" --tool-path "$work/tool-path" --add-source "$work/tools" \
  >"$work/tool-install.log" 2>&1 || { cat "$work/tool-install.log" >&2; fail "dotnet tool install failed"; }
"$work/tool-path/diffusion-classifier" demo --count 10 --per-digit 0 >"$work/tool-run.log" 2>&1 \
  || { cat "$work/tool-run.log" >&2; fail "the installed tool did not run its demo"; }
grep -q 'Accuracy' "$work/tool-run.log" || fail "the installed tool's demo printed no accuracy: $(cat "$work/tool-run.log")"
"$work/tool-path/diffusion-classifier" classify --model /nonexistent.safetensors 7.png >"$work/tool-err.log" 2>&1 \
  && fail "a missing model file did not fail"
step "OK: package contents, local-feed restore, backend, libstdc++ fix, Predict on the embedded model and the installed tool all work"
