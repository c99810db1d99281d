// ML.NET keeps model persistence internal. This assembly compiles against publicized copies of the two
// assemblies below (build/Publicizer) and asks the runtime to skip access checks into them. Every use of
// their non-public members stays in this folder (MLNet/Internal); a test scans the IL to keep it so.
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Core")]
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Data")]

namespace System.Runtime.CompilerServices;

/// <summary>
/// Read by the .NET runtime (not by the C# compiler): code in the assembly carrying it may access
/// non-public types and members of the named assembly.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
internal sealed class IgnoresAccessChecksToAttribute(string assemblyName) : Attribute
{
    /// <summary>The simple name of the assembly whose access checks are skipped.</summary>
    public string AssemblyName { get; } = assemblyName;
}
