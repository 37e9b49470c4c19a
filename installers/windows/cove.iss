; Inno Setup 6 script: Cove for Windows, installed per user (no administrator rights needed).
;
; Built by installers\windows\build.ps1, which runs PyInstaller (dist\cove\) and then
;     ISCC.exe /DAppVersion=<version from pyproject.toml> installers\windows\cove.iss
; Output: dist\cove-<version>-windows-x64-setup.exe
;
; - Installs into %LOCALAPPDATA%\Programs\Cove with a Start menu entry and an uninstaller
;   (Settings > Apps). The fixed AppId makes a newer installer upgrade the same installation in
;   place; the previous version's program files are replaced, never merged.
; - User data is never in the install folder: conversations, settings and models live in
;   %LOCALAPPDATA%\Cove (platformdirs), which neither upgrades nor the uninstaller touch.

#ifndef AppVersion
  #error Pass the version from pyproject.toml: ISCC /DAppVersion=X.Y.Z cove.iss (build.ps1 does this)
#endif

#define AppName "Cove"
#define AppExeName "cove.exe"
#define BundleDir "..\..\dist\cove"

[Setup]
; Never change the AppId: it is how Windows and Inno Setup recognise an upgrade of Cove.
AppId={{EF03F06D-634B-4AED-8CA1-8E2BE6817E65}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=Cove
VersionInfoVersion={#AppVersion}
DefaultDirName={localappdata}\Programs\Cove
DefaultGroupName=Cove
DisableProgramGroupPage=yes
DisableDirPage=auto
PrivilegesRequired=lowest
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=cove-{#AppVersion}-windows-x64-setup
SetupIconFile=..\..\build\icons\cove.ico
UninstallDisplayIcon={app}\{#AppExeName}
UninstallDisplayName={#AppName}
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
CloseApplications=yes
RestartApplications=no

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[InstallDelete]
; Upgrade in place: the old bundle's files go first, so no stale library of an older version stays.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExeName}"; Comment: "Private, offline chat with local language models"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExeName}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExeName}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

; No [UninstallDelete] for user data: %LOCALAPPDATA%\Cove (conversations, settings, models) stays
; after uninstalling. Delete that folder by hand to remove it.
