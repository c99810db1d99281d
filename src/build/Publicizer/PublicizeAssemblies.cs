// An MSBuild task, compiled by RoslynCodeTaskFactory from PublicizeReferences.targets (not part of any project).
//
// It rewrites reference assemblies so that their non-public types and members become public, so C# can
// compile against them. The copies are used for compilation only: the original, signed assemblies are
// what ships and runs, and the runtime is told to allow the access with [IgnoresAccessChecksTo].
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using Mono.Cecil;

public sealed class PublicizeAssemblies : Task
{
    /// <summary>Assemblies to rewrite; metadata PublicizedPath says where each copy goes.</summary>
    [Required]
    public ITaskItem[] Assemblies { get; set; }

    /// <summary>Folders where Cecil may look for the assemblies they reference.</summary>
    public string[] SearchDirectories { get; set; }

    public override bool Execute()
    {
        foreach (var item in Assemblies)
        {
            var source = item.GetMetadata("FullPath");
            var target = item.GetMetadata("PublicizedPath");
            if (string.IsNullOrEmpty(target))
            {
                Log.LogError("Reference '{0}' has no PublicizedPath metadata: the targets file must set where its publicized copy goes.", source);
                return false;
            }

            try
            {
                Publicize(source, target);
                Log.LogMessage(MessageImportance.Low, "Publicized {0} -> {1}", source, target);
            }
            catch (Exception e)
            {
                Log.LogError("Could not publicize '{0}' into '{1}': {2}", source, target, e.Message);
                return false;
            }
        }

        return !Log.HasLoggedErrors;
    }

    private void Publicize(string source, string target)
    {
        using (var resolver = new DefaultAssemblyResolver())
        {
            resolver.AddSearchDirectory(Path.GetDirectoryName(source));
            foreach (var directory in SearchDirectories ?? Array.Empty<string>())
            {
                resolver.AddSearchDirectory(directory);
            }

            var parameters = new ReaderParameters { AssemblyResolver = resolver, InMemory = true, ReadSymbols = false };
            using (var assembly = AssemblyDefinition.ReadAssembly(source, parameters))
            {
                foreach (var type in assembly.MainModule.GetTypes().Where(ShouldPublicize))
                {
                    PublicizeType(type);
                }

                Directory.CreateDirectory(Path.GetDirectoryName(target));
                // Write beside, then move: an interrupted build never leaves a half-written copy that
                // Inputs/Outputs would take as up to date.
                var temporary = target + ".tmp";
                assembly.Write(temporary);
                File.Copy(temporary, target, overwrite: true);
                File.Delete(temporary);
            }
        }
    }

    // Only the library's own namespaces: its internal copies of System.* polyfills (and compiler-generated
    // types) would clash with the framework's public ones if they became public.
    private static bool ShouldPublicize(TypeDefinition type)
    {
        var outer = type;
        while (outer.IsNested)
        {
            outer = outer.DeclaringType;
        }

        return outer.Namespace.StartsWith("Microsoft.ML", StringComparison.Ordinal) && !IsCompilerGenerated(type);
    }

    private static void PublicizeType(TypeDefinition type)
    {
        type.Attributes &= ~TypeAttributes.VisibilityMask;
        type.Attributes |= type.IsNested ? TypeAttributes.NestedPublic : TypeAttributes.Public;

        foreach (var method in type.Methods)
        {
            method.Attributes &= ~MethodAttributes.MemberAccessMask;
            method.Attributes |= MethodAttributes.Public;
        }

        // Backing fields of auto-properties and events keep their access: an event's backing field has the
        // event's name, and a public field of that name would make the event ambiguous to C#.
        var eventNames = new HashSet<string>(type.Events.Select(e => e.Name), StringComparer.Ordinal);
        foreach (var field in type.Fields.Where(f => !IsCompilerGenerated(f) && !eventNames.Contains(f.Name)))
        {
            field.Attributes &= ~FieldAttributes.FieldAccessMask;
            field.Attributes |= FieldAttributes.Public;
        }
    }

    private static bool IsCompilerGenerated(ICustomAttributeProvider member) =>
        member.CustomAttributes.Any(a => a.AttributeType.FullName == "System.Runtime.CompilerServices.CompilerGeneratedAttribute");
}
